//! API keys and tokens: vendor prefixes, JSON Web Tokens, PEM private keys, and long strings
//! random enough to be secrets.

/// Bytes of a key-like token: letters, digits, `_` and `-`.
pub(super) fn is_key(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Bytes of a base64 run (a key-like token, or `+`, `/`, `=`).
fn is_base64(c: u8) -> bool {
    is_key(c) || matches!(c, b'+' | b'/' | b'=')
}

/// Vendor prefixes and the fewest characters that must follow them.
const PREFIXES: &[(&[u8], usize)] = &[
    (b"sk-ant-", 20),
    (b"sk-", 20),
    (b"sk_live_", 16),
    (b"rk_live_", 16),
    (b"sk_test_", 16),
    (b"rk_test_", 16),
    (b"whsec_", 20),
    (b"ghp_", 30),
    (b"gho_", 30),
    (b"ghu_", 30),
    (b"ghs_", 30),
    (b"ghr_", 30),
    (b"github_pat_", 20),
    (b"glpat-", 20),
    (b"xoxb-", 10),
    (b"xoxp-", 10),
    (b"xoxa-", 10),
    (b"xoxr-", 10),
    (b"xoxs-", 10),
    (b"xoxe-", 10),
    (b"AIza", 30),
    (b"hf_", 30),
    (b"npm_", 30),
    (b"pypi-", 40),
];

/// A vendor key: the token `b[start..end]` (key-like bytes) begins with a vendor prefix and
/// is long enough, or is an AWS access key id (`AKIA`/`ASIA` and 16 upper-case letters or
/// digits).
pub(super) fn vendor(token: &[u8]) -> bool {
    if token.len() == 20
        && (token.starts_with(b"AKIA") || token.starts_with(b"ASIA"))
        && token[4..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return true;
    }
    PREFIXES.iter().any(|(p, min)| {
        token.len() >= p.len() + min && token.starts_with(p) && {
            // `sk-` alone starts words too (`sk-learn-…`): its keys have a digit.
            let rest = &token[p.len()..];
            rest.iter().any(u8::is_ascii_alphabetic)
                && (*p != b"sk-" || rest.iter().any(u8::is_ascii_digit))
        }
    })
}

/// A JSON Web Token starting at `start` (its first part begins `eyJ`): where it ends.
pub(super) fn jwt(b: &[u8], start: usize) -> Option<usize> {
    let mut p = start;
    for part in 0..3 {
        let s = p;
        while p < b.len() && is_key(b[p]) {
            p += 1;
        }
        if p - s < if part == 2 { 8 } else { 10 } {
            return None;
        }
        if part < 2 {
            if b.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
    }
    Some(p)
}

/// How far after `-----BEGIN` a private key's header may end.
const MAX_PEM_HEADER: usize = 64;
/// How far after its header a PEM block's end line may be.
const MAX_PEM_BODY: usize = 16 * 1024;

/// A PEM private-key block whose `-----BEGIN` is at `start`: where it ends (after its
/// `-----END … PRIVATE KEY-----` line, or after the header when no end is near).
pub(super) fn pem(b: &[u8], start: usize) -> Option<usize> {
    let head_end = b.len().min(start + MAX_PEM_HEADER);
    let head = &b[start..head_end];
    let close = memchr::memmem::find(head, b"PRIVATE KEY-----")?;
    let after_head = start + close + b"PRIVATE KEY-----".len();
    let body_end = b.len().min(after_head + MAX_PEM_BODY);
    match memchr::memmem::find(&b[after_head..body_end], b"-----END ") {
        Some(e) => {
            let from = after_head + e;
            let tail_end = b.len().min(from + MAX_PEM_HEADER);
            match memchr::memmem::find(&b[from..tail_end], b"KEY-----") {
                Some(t) => Some(from + t + b"KEY-----".len()),
                None => Some(after_head),
            }
        }
        None => Some(after_head),
    }
}

/// Fewest characters of a high-entropy secret.
const MIN_SECRET: usize = 20;
/// Most characters of a high-entropy secret (a longer run is data, not a key).
const MAX_SECRET: usize = 512;

/// The base64 run starting at `start`: where it ends.
pub(super) fn base64_end(b: &[u8], start: usize) -> usize {
    let mut p = start;
    while p < b.len() && is_base64(b[p]) {
        p += 1;
    }
    p
}

/// Whether `run` looks like a random secret: 20–512 characters mixing upper case, lower case
/// and digits (two at least under 30 characters); the character class (upper, lower, digit, other) changing
/// between at least 30 % of neighbouring characters (random base62: about 62 %; camel-case
/// names and words with a number: under 25 %); and a Shannon entropy (bits a character) of at
/// least `min(4.4, log2(len) − 1)`: 3.32 for 20 characters, 4.0 for 32, 4.4 from 40 (random
/// base62 strings: about `log2(len) − 0.3` at these lengths).
pub(super) fn high_entropy(run: &[u8]) -> bool {
    let n = run.len();
    if !(MIN_SECRET..=MAX_SECRET).contains(&n) {
        return false;
    }
    let (mut upper, mut lower, mut digit, mut switches) = (0usize, 0usize, 0usize, 0usize);
    let mut last = class(run[0]);
    for &c in run {
        upper += usize::from(c.is_ascii_uppercase());
        lower += usize::from(c.is_ascii_lowercase());
        digit += usize::from(c.is_ascii_digit());
        let now = class(c);
        switches += usize::from(now != last);
        last = now;
    }
    if upper == 0
        || lower == 0
        || digit < if n >= 30 { 1 } else { 2 }
        || switches * 10 < (n - 1) * 3
    {
        return false;
    }
    entropy(run) >= entropy_threshold(n)
}

/// A character's class: upper case, lower case, digit, other.
fn class(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    }
}

/// The entropy a run of `n` characters must reach.
fn entropy_threshold(n: usize) -> f64 {
    ((n as f64).log2() - 1.0).min(4.4)
}

/// Shannon entropy of the bytes of `run`, in bits a byte.
fn entropy(run: &[u8]) -> f64 {
    let mut counts = [0u16; 128];
    for &c in run {
        counts[usize::from(c & 0x7f)] += 1;
    }
    let n = run.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_tells_random_strings_from_words_and_identifiers() {
        for secret in [
            "xY7/kQ2+LmZ8vB1nR7kW3pY6sT0aE5dF9gH4jK1l",
            "Zx8Kq2Lm9Vb4Nc7Rt1Ys5Wd3",
            "a8F3kL0pQ9zX2mN7vB4cR6tY1uI5oP0w",
        ] {
            assert!(high_entropy(secret.as_bytes()), "{secret}");
        }
        for word in [
            "getUserAccountBalance2024",
            "MyPassword1234567890",
            "ThisIsAVeryLongCamelCaseName1",
            "Windows10ProfessionalEdition",
            "abcdefghijklmnopqrstuvwxyz",
            "ORDER1234567890ABCDEF",
        ] {
            assert!(!high_entropy(word.as_bytes()), "{word}");
        }
    }
}
