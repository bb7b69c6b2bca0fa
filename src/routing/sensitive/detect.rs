//! The scan: e-mail addresses around each `@` and private keys after each `-----BEGIN`
//! (both found with memchr), then one pass over the text's tokens: digit runs go to
//! [`numbers`], tokens with letters to the IBAN, National Insurance, vendor-key, JWT and
//! entropy checks. Each byte is looked at a bounded number of times: linear time.

use super::keys;
use super::{Finding, KindSet, SensitiveKind, numbers, words};

/// Pushes every finding of the kinds in `kinds` to `out` (unordered, maybe overlapping: see
/// [`resolve`]).
pub(super) fn scan(text: &str, kinds: KindSet, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    if kinds.has(&SensitiveKind::Email) {
        let mut last_end = 0;
        for at in memchr::memchr_iter(b'@', b) {
            if at < last_end {
                continue;
            }
            if let Some((s, e)) = words::email(b, at) {
                out.push(found(SensitiveKind::Email, s, e));
                last_end = e;
            }
        }
    }
    if kinds.has(&SensitiveKind::ApiKey) {
        let mut last_end = 0;
        for begin in PEM_BEGIN.find_iter(b) {
            if begin < last_end {
                continue;
            }
            if let Some(e) = keys::pem(b, begin) {
                out.push(found(SensitiveKind::ApiKey, begin, e));
                last_end = e;
            }
        }
    }
    let numbers_wanted = kinds.has(&SensitiveKind::Card)
        || kinds.has(&SensitiveKind::Phone)
        || kinds.has(&SensitiveKind::Ssn)
        || kinds.has(&SensitiveKind::NationalId);
    let n = b.len();
    let mut i = 0;
    // Where the last base64 run looked at ends: a run is judged once, from its start.
    let mut base64_seen = 0;
    while i < n {
        let c = b[i];
        let class = CLASS[usize::from(c)];
        if class & KEY == 0 {
            if (c == b'+' || c == b'(') && numbers_wanted && i + 1 < n && b[i + 1].is_ascii_digit()
            {
                i = numbers::scan(b, i, kinds, out);
            } else {
                i += 1;
            }
            continue;
        }
        // A token of key bytes: letters, digits, `_`, `-`.
        let mut j = i + 1;
        let mut seen = class;
        while j < n {
            let k = CLASS[usize::from(b[j])];
            if k & KEY == 0 {
                break;
            }
            seen |= k;
            j += 1;
        }
        if seen & WORD == 0 {
            // Digits and dashes (`-` alone is no token start worth a look).
            i = if c.is_ascii_digit() && numbers_wanted {
                numbers::scan(b, i, kinds, out)
            } else {
                j
            };
            continue;
        }
        // Digits with a letter: a phone number's extension (`555-234-5678x12`) or a word.
        if c.is_ascii_digit() && numbers_wanted {
            let before = out.len();
            let end = numbers::scan(b, i, kinds, out);
            if out.len() > before {
                i = end;
                continue;
            }
        }
        match word(b, i, j, kinds, &mut base64_seen) {
            Some((kind, end)) => {
                out.push(found(kind, i, end));
                i = end.max(j);
            }
            None => i = j,
        }
    }
}

/// Where PEM blocks begin, its searcher built once.
static PEM_BEGIN: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"-----BEGIN "));

/// A byte of a key-like token (letters, digits, `_`, `-`).
const KEY: u8 = 1;
/// A letter or `_`.
const WORD: u8 = 2;

/// Each byte's classes.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] = KEY | WORD;
        } else if b.is_ascii_digit() || b == b'-' {
            t[c] = KEY;
        }
        c += 1;
    }
    t
};

/// What the token `b[i..j]` (with a letter) starts, and where it ends.
fn word(
    b: &[u8],
    i: usize,
    j: usize,
    kinds: KindSet,
    base64_seen: &mut usize,
) -> Option<(SensitiveKind, usize)> {
    let len = j - i;
    let starts_upper2 = len >= 2 && b[i].is_ascii_alphabetic() && b[i + 1].is_ascii_alphabetic();
    if kinds.has(&SensitiveKind::Iban)
        && starts_upper2
        && len >= 4
        && b[i + 2].is_ascii_digit()
        && b[i + 3].is_ascii_digit()
        && let Some(end) = words::iban(b, i)
    {
        return Some((SensitiveKind::Iban, end));
    }
    if kinds.has(&SensitiveKind::NationalId)
        && starts_upper2
        && (len == 2 || len == 8 || len == 9)
        && let Some(end) = words::nino(b, i)
    {
        return Some((SensitiveKind::NationalId, end));
    }
    if !kinds.has(&SensitiveKind::ApiKey) {
        return None;
    }
    if len >= 14 && keys::vendor(&b[i..j]) {
        return Some((SensitiveKind::ApiKey, j));
    }
    if len >= 10
        && b[i..].starts_with(b"eyJ")
        && let Some(end) = keys::jwt(b, i)
    {
        return Some((SensitiveKind::ApiKey, end));
    }
    // A long random string, judged once from its start; not a piece of a URL, a path or an
    // address.
    if i < *base64_seen {
        return None;
    }
    // `name=value`: the name is no secret; the value is judged from its own start.
    if len < 20 && j < b.len() && b[j] == b'=' {
        return None;
    }
    let extends = j < b.len() && matches!(b[j], b'+' | b'/' | b'=');
    if len < 20 && !extends {
        return None;
    }
    let end = keys::base64_end(b, i);
    *base64_seen = end;
    let inside_url = i > 0
        && matches!(
            b[i - 1],
            b'.' | b'/' | b':' | b'@' | b'\\' | b'?' | b'&' | b'%' | b'#'
        );
    (!inside_url && keys::high_entropy(&b[i..end])).then_some((SensitiveKind::ApiKey, end))
}

fn found(kind: SensitiveKind, start: usize, end: usize) -> Finding {
    Finding {
        kind,
        span: start..end,
    }
}

/// Orders findings by where they start and drops any that overlaps one kept before it (the
/// earlier start wins; at the same start, the longer span).
pub(super) fn resolve(found: &mut Vec<Finding>) {
    found.sort_unstable_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then(b.span.end.cmp(&a.span.end))
    });
    let mut last_end = 0;
    let mut first = true;
    found.retain(|f| {
        let keep = first || f.span.start >= last_end;
        if keep {
            last_end = f.span.end;
            first = false;
        }
        keep
    });
}
