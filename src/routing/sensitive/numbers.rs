//! Numbers written for people: payment cards, phone numbers, US SSNs, Dutch BSNs. A run of
//! digit groups (`4111 1111 1111 1111`, `(555) 123-4567`, `+44 20 7946 0958`) is read once;
//! its whole, then each shorter prefix of its groups, is checked against every kind.

use super::context::{self, Cue, Next};
use super::{Finding, KindSet, SensitiveKind};

/// Most digit groups of a run that are kept (a run may be longer; it is consumed whole).
const MAX_GROUPS: usize = 8;
/// Most digits of a run that are kept.
const MAX_DIGITS: usize = 24;

/// A run of digit groups, as read from the text.
struct Run {
    /// Whether the run starts with `+`.
    plus: bool,
    /// Whether the first group is in parentheses (`(555) 123-4567`).
    paren: bool,
    /// Each group: its start and end (bytes), and the separator before it (0 for the first).
    groups: [(usize, usize, u8); MAX_GROUPS],
    n_groups: usize,
    /// The digits of the kept groups, as values 0–9.
    digits: [u8; MAX_DIGITS],
    n_digits: usize,
    /// Where the run ends (bytes): everything up to here is consumed.
    end: usize,
}

/// Reads the run starting at `start` (a digit, `+` or `(`), checks it, and returns where it
/// ends (the caller continues from there). A finding is pushed to `out`.
pub(super) fn scan(b: &[u8], start: usize, kinds: KindSet, out: &mut Vec<Finding>) -> usize {
    let run = read(b, start);
    // Glued to a word before (`x/4111…`, `v.1234`): part of an identifier or a path.
    if start > 0 {
        let prev = b[start - 1];
        if prev.is_ascii_alphanumeric()
            || prev == b'_'
            || (matches!(prev, b'/' | b'.' | b':' | b'-' | b'=')
                && start > 1
                && b[start - 2].is_ascii_alphanumeric())
        {
            return run.end.max(start + 1);
        }
    }
    // The whole run, then each shorter prefix of its groups (of 7 digits or more: no kind
    // is shorter).
    let mut k = run.n_groups;
    let mut digits = run.n_digits;
    while k > 0 && digits >= 7 {
        if let Some((kind, end)) = check(b, &run, k, kinds) {
            out.push(Finding {
                kind,
                span: start..end,
            });
            return end;
        }
        digits = digits.saturating_sub(run.groups[k - 1].1 - run.groups[k - 1].0);
        k -= 1;
    }
    run.end.max(start + 1)
}

/// Reads a run: groups of digits separated by one of ` -./`, or a `(group)` first.
fn read(b: &[u8], start: usize) -> Run {
    let n = b.len();
    let mut run = Run {
        plus: false,
        paren: false,
        groups: [(0, 0, 0); MAX_GROUPS],
        n_groups: 0,
        digits: [0; MAX_DIGITS],
        n_digits: 0,
        end: start,
    };
    let mut p = start;
    if b[p] == b'+' {
        run.plus = true;
        p += 1;
    }
    let mut sep = 0u8;
    loop {
        let mut paren = false;
        let paren_here = run.n_groups == 0 || (run.plus && run.n_groups == 1);
        if p + 1 < n && b[p] == b'(' && b[p + 1].is_ascii_digit() && paren_here {
            paren = true;
            p += 1;
        }
        let g = p;
        while p < n && b[p].is_ascii_digit() {
            p += 1;
        }
        if p == g || (paren && (p >= n || b[p] != b')')) {
            // No digits (a `+` alone), or an unclosed parenthesis: the run ends before.
            break;
        }
        if run.n_groups < MAX_GROUPS {
            run.groups[run.n_groups] = (g, p, sep);
            run.n_groups += 1;
            for &d in &b[g..p] {
                if run.n_digits < MAX_DIGITS {
                    run.digits[run.n_digits] = d - b'0';
                }
                run.n_digits = run.n_digits.saturating_add(1);
            }
        } else {
            run.n_digits = usize::MAX;
        }
        run.end = p;
        if paren {
            run.paren = true;
            p += 1;
            run.end = p;
            // `(555) 123`, `(555)123`, `(555)-123`
            if p + 1 < n && matches!(b[p], b' ' | b'-') && b[p + 1].is_ascii_digit() {
                sep = b')';
                p += 1;
                continue;
            }
            if p < n && b[p].is_ascii_digit() {
                sep = b')';
                continue;
            }
            break;
        }
        if p + 1 < n && matches!(b[p], b' ' | b'-' | b'.' | b'/') && b[p + 1].is_ascii_digit() {
            sep = b[p];
            p += 1;
            continue;
        }
        // `+1 (555) 123-4567`
        if run.plus && run.n_groups == 1 && p + 2 < n && b[p] == b' ' && b[p + 1] == b'(' {
            sep = b' ';
            p += 1;
            continue;
        }
        break;
    }
    run
}

/// The first `k` groups of `run` as one number: the kind it is, if any, and where it ends.
fn check(b: &[u8], run: &Run, k: usize, kinds: KindSet) -> Option<(SensitiveKind, usize)> {
    let (start, end) = (run.groups[0].0, run.groups[k - 1].1);
    // The number must end at a word boundary (`1234abc` is an identifier), and not run on
    // into a decimal part or a thousands group (`1,234.50`); a phone number may have an
    // extension (`555-234-5678x123`).
    let mut extension = None;
    if end < b.len() {
        let next = b[end];
        if next == b'x' {
            let digits = b[end + 1..]
                .iter()
                .take(6)
                .take_while(|c| c.is_ascii_digit())
                .count();
            let after = end + 1 + digits;
            if (1..=5).contains(&digits)
                && (after >= b.len() || !(b[after].is_ascii_alphanumeric() || b[after] == b'_'))
            {
                extension = Some(after);
            } else {
                return None;
            }
        } else if next.is_ascii_alphanumeric() || next == b'_' {
            return None;
        }
        if matches!(next, b',' | b'.') && end + 1 < b.len() && b[end + 1].is_ascii_digit() {
            return None;
        }
    }
    let n: usize = run.groups[..k].iter().map(|g| g.1 - g.0).sum();
    if n > MAX_DIGITS {
        return None;
    }
    let digits = &run.digits[..n];
    let lens = Lens::of(&run.groups[..k]);
    let seps = Seps::of(&run.groups[..k]);
    // The words before the number, and after it: each looked up once.
    let before = std::cell::OnceCell::new();
    let before = || {
        *before.get_or_init(|| {
            context::before(
                b,
                if run.plus || run.paren {
                    start - 1
                } else {
                    start
                },
            )
        })
    };
    let after = std::cell::OnceCell::new();
    let after = || *after.get_or_init(|| context::after(b, end));
    let plain = !run.plus && !run.paren && extension.is_none();
    if kinds.has(&SensitiveKind::Card) && plain && card(digits, &lens, seps) {
        // A card word before it decides; an identifier word before it, or (for bare
        // digits, not printed in a card's groups) right after it, rules it out.
        let ok = match before() {
            Cue::Card => true,
            Cue::Id => false,
            _ => k > 1 || after() != Cue::Id,
        };
        if ok {
            return Some((SensitiveKind::Card, end));
        }
    }
    if kinds.has(&SensitiveKind::Ssn) && plain && n == 9 {
        let grouped = lens.is(&[3, 2, 4]) && matches!(seps, Seps::All(b'-' | b' '));
        if (grouped || k == 1) && ssn_valid(digits) {
            let c = match before() {
                Cue::None => after(),
                c => c,
            };
            if (grouped && matches!(c, Cue::None | Cue::Ssn)) || c == Cue::Ssn {
                return Some((SensitiveKind::Ssn, end));
            }
        }
    }
    if kinds.has(&SensitiveKind::NationalId)
        && plain
        && n == 9
        && bsn_valid(digits)
        && before() == Cue::Bsn
    {
        return Some((SensitiveKind::NationalId, end));
    }
    if kinds.has(&SensitiveKind::Phone) {
        let end = extension.unwrap_or(end);
        match phone(run, digits, &lens, seps) {
            Shape::Strong => {
                let c = match before() {
                    Cue::None => after(),
                    c => c,
                };
                if matches!(c, Cue::None | Cue::Phone) {
                    return Some((SensitiveKind::Phone, end));
                }
            }
            Shape::Weak => {
                // After a phone word, or with no cue before it and a phone's label right
                // after it (`781 1704 office`); never a quantity (`$`, `EUR`, `points`).
                let next = context::next_word(b, end);
                let cued = match before() {
                    Cue::Phone => true,
                    Cue::None => next == Next::PhoneLabel,
                    _ => false,
                };
                if cued && next != Next::Unit && !context::currency_before(b, start) {
                    return Some((SensitiveKind::Phone, end));
                }
            }
            Shape::No => {}
        }
    }
    None
}

/// The lengths of a number's groups.
struct Lens {
    lens: [u8; MAX_GROUPS],
    k: usize,
}

impl Lens {
    fn of(groups: &[(usize, usize, u8)]) -> Lens {
        let mut lens = [0u8; MAX_GROUPS];
        for (l, g) in lens.iter_mut().zip(groups) {
            *l = u8::try_from(g.1 - g.0).unwrap_or(u8::MAX);
        }
        Lens {
            lens,
            k: groups.len(),
        }
    }

    fn get(&self) -> &[u8] {
        &self.lens[..self.k]
    }

    fn is(&self, want: &[u8]) -> bool {
        self.get() == want
    }
}

/// The separators between a number's groups.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seps {
    /// One group: no separator.
    None,
    /// The same separator everywhere.
    All(u8),
    /// Different separators (`(555) 123-4567`).
    Mixed,
}

impl Seps {
    fn of(groups: &[(usize, usize, u8)]) -> Seps {
        let mut seps = groups.iter().skip(1).map(|g| g.2);
        let Some(first) = seps.next() else {
            return Seps::None;
        };
        if seps.all(|s| s == first) {
            Seps::All(first)
        } else {
            Seps::Mixed
        }
    }
}

/// Whether `d` is a card number: an issuer's range and length, the Luhn checksum, and the
/// grouping cards are printed with.
fn card(d: &[u8], lens: &Lens, seps: Seps) -> bool {
    let n = d.len();
    if !(12..=19).contains(&n) {
        return false;
    }
    let grouping = match seps {
        Seps::None => true,
        Seps::All(b' ' | b'-') => {
            let l = lens.get();
            let fours = l.len() >= 3
                && l[..l.len() - 1].iter().all(|&g| g == 4)
                && (1..=4).contains(&l[l.len() - 1]);
            fours || l == [4, 6, 5] || l == [4, 6, 4]
        }
        _ => false,
    };
    grouping && issuer(d) && luhn(d)
}

/// Whether the digits fall in an issuer's range with one of its lengths.
fn issuer(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    // Visa
    (p1 == 4 && matches!(n, 13 | 16 | 19))
        // Mastercard, 51–55 and the 2-series 2221–2720
        || (((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16)
        // American Express
        || ((p2 == 34 || p2 == 37) && n == 15)
        // Discover
        || ((p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
            && (16..=19).contains(&n))
        // JCB 35 (3528–3589 assigned), and its older 15-digit ranges 1800 and 2131
        || (p2 == 35 && (16..=19).contains(&n))
        || ((p4 == 1800 || p4 == 2131) && n == 15)
        // Diners Club
        || (((300..=305).contains(&p3) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39)
            && (14..=19).contains(&n))
        // UnionPay
        || (p2 == 62 && (16..=19).contains(&n))
        // Maestro: 50, 56–58, 6304, 6390, 67
        || ((p2 == 50 || (56..=58).contains(&p2) || p4 == 6304 || p4 == 6390 || p2 == 67)
            && (12..=19).contains(&n))
        // Mir
        || ((2200..=2204).contains(&p4) && (16..=19).contains(&n))
}

/// The Luhn checksum.
pub(super) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A US SSN's area, group and serial rules: area not 000, 666 or 900–999; group not 00;
/// serial not 0000.
fn ssn_valid(d: &[u8]) -> bool {
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = d[3] * 10 + d[4];
    let serial = d[5..9].iter().any(|&x| x != 0);
    area != 0 && area != 666 && area < 900 && group != 0 && serial
}

/// The Dutch 11-test: 9·d1 + 8·d2 + … + 2·d8 − d9 is a multiple of 11 (and not 0).
fn bsn_valid(d: &[u8]) -> bool {
    let mut sum: i32 = 0;
    for (i, &x) in d[..8].iter().enumerate() {
        sum += (9 - i as i32) * i32::from(x);
    }
    sum -= i32::from(d[8]);
    sum != 0 && sum % 11 == 0
}

/// How sure the shape of a number makes it a phone number.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// Written as phone numbers are: one unless an identifier word says otherwise.
    Strong,
    /// Could be: one only after a phone word.
    Weak,
    /// Not a phone number (too short or long, a date).
    No,
}

fn phone(run: &Run, d: &[u8], lens: &Lens, seps: Seps) -> Shape {
    let n = d.len();
    let k = lens.k;
    let l = lens.get();
    if run.plus {
        return if (8..=15).contains(&n) && d[0] != 0 {
            Shape::Strong
        } else {
            Shape::No
        };
    }
    if !(7..=15).contains(&n) || date_like(d, l, seps) || time_range(l, &run.groups[..k]) {
        return Shape::No;
    }
    // `00` and a country code.
    if d[0] == 0 && d[1] == 0 && d[2] != 0 && (10..=15).contains(&n) && k >= 2 {
        return Shape::Strong;
    }
    // North America: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567.
    // The area code's first digit is 2–9 and it is not N11 (the exchange's rule, 2–9 too,
    // is left out: written with separators, the shape says enough).
    let nanp = |area: &[u8], _exchange: &[u8]| area[0] >= 2 && !(area[1] == 1 && area[2] == 1);
    let nanp_seps = matches!(seps, Seps::All(b' ' | b'-' | b'.')) || run.paren;
    if nanp_seps && l == [3, 3, 4] && nanp(&d[0..3], &d[3..6]) {
        return Shape::Strong;
    }
    if nanp_seps && !run.paren && l == [1, 3, 3, 4] && d[0] == 1 && nanp(&d[1..4], &d[4..7]) {
        return Shape::Strong;
    }
    // National numbers with a trunk 0 (UK, DE, FR, NL, IT…), in groups.
    let trunk_seps = match seps {
        Seps::All(b' ' | b'-' | b'.') => true,
        // `030/1234567`, `(030) 1234567`
        Seps::All(b'/' | b')') => k == 2,
        Seps::Mixed => run.groups[1].2 == b'/' || run.groups[1].2 == b')' || run.paren,
        _ => false,
    };
    if d[0] == 0
        && d[1] != 0
        && (10..=12).contains(&n)
        && k >= 2
        && (2..=5).contains(&l[0])
        && l[1..].iter().all(|&g| g >= 2)
        && trunk_seps
    {
        return Shape::Strong;
    }
    // A US ZIP+4 code (`90210-1234`).
    if l == [5, 4] && seps == Seps::All(b'-') {
        return Shape::No;
    }
    Shape::Weak
}

/// Dates: 2-2-4, 4-2-2, 2-2-2 and the like, with `/`, `.` or `-`; and day, month and a year
/// of 19xx or 20xx with any separator (`14 03 2024`, `2024 03 14`).
fn date_like(d: &[u8], l: &[u8], seps: Seps) -> bool {
    if matches!(seps, Seps::All(b'/' | b'.' | b'-'))
        && matches!(l, [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2])
    {
        return true;
    }
    let century = |at: usize| matches!((d[at], d[at + 1]), (1, 9) | (2, 0));
    match l {
        [1 | 2, 1 | 2, 4] => century(d.len() - 4),
        [4, 1 | 2, 1 | 2] => century(0),
        _ => false,
    }
}

/// A range of times written with dots (`9.30-17.30`, `10.00 - 12.00` is two runs): hours and
/// minutes, a dash between them.
fn time_range(l: &[u8], groups: &[(usize, usize, u8)]) -> bool {
    matches!(l, [1 | 2, 2, 1 | 2, 2])
        && groups[1].2 == b'.'
        && groups[2].2 == b'-'
        && groups[3].2 == b'.'
}
