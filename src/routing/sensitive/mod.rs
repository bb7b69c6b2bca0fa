//! Sensitive data found in process: [`SensitiveDataRule`] routes a request that holds payment
//! card numbers, IBANs, e-mail addresses, phone numbers, national identifiers, API keys or
//! the user's own patterns to a route of its own (an on-prem one), or masks them before the
//! request leaves; [`detect_sensitive`] and [`SensitiveDataRule::scan`] tell what a text
//! holds.
//!
//! **How it finds things**: see [`SensitiveKind`].
//!
//! A [`Finding`] is a kind and a byte span: the value itself is never kept, logged or put in
//! an error, and `meta.routing` names the kinds only.

mod context;
mod detect;
mod keys;
mod numbers;
mod rule;
#[cfg(test)]
mod tests;
mod words;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

pub use rule::SensitiveDataRule;

/// A kind of sensitive data, and how [`SensitiveDataRule`] and [`detect_sensitive`] find it.
///
/// **How it finds things.** One pass over the text's bytes, hand-written (no backtracking:
/// linear time, a few hundred nanoseconds a KiB), plus the [`regex`](https://docs.rs/regex)
/// crate for the user's own patterns (linear-time by construction). Every detector checks
/// what can be checked, and reads the words before a number where a checksum is not enough:
///
/// | kind | found when |
/// |---|---|
/// | [`Card`](SensitiveKind::Card) | 12–19 digits, contiguous or grouped as cards are printed (4-4-4-4, 4-6-5 for American Express, 4-6-4 for Diners), spaces or dashes; an issuer's range and length (Visa, Mastercard 51–55 and 2221–2720, American Express, Discover, JCB, Diners, UnionPay, Maestro, Mir); the Luhn checksum; and no order, tracking, invoice or reference word nearer before it than a card word (`card`, `visa`, `exp`…) |
/// | [`Iban`](SensitiveKind::Iban) | a country code of the IBAN registry, that country's length, the mod-97 checksum; with or without spaces |
/// | [`Email`](SensitiveKind::Email) | `local@domain.tld`, a dot in the domain and a top-level domain of two letters or more |
/// | [`Phone`](SensitiveKind::Phone) | `+` and 8–15 digits; `00` and a country; US `(555) 123-4567`, `555-123-4567`, `1-800-555-0199` (area and exchange codes valid); national numbers with a trunk `0` and 10–12 digits in groups (UK `020 7946 0958`, DE `030 12345678`, FR `01 23 45 67 89`, NL `06-12345678`); any other 7–15 digits (`699 956 915`, `781 1704`, `(37) 788-063`) only after a phone word (`call`, `phone`, `mobile`, `tel`, `answering`, `messages`…) or, with no other cue before it, followed by a phone's label (`office`, `fax`, `mobile`, `home`). Dates, times and time ranges, prices and amounts (a currency sign before, a currency or unit after), ZIP+4 codes, and numbers after an order, tracking or ZIP word are not phones |
/// | [`Ssn`](SensitiveKind::Ssn) | US `123-45-6789` (or spaces) with a valid area (not 000, 666, 900–999), group (not 00) and serial (not 0000); nine bare digits only after `SSN`/`social security` |
/// | [`NationalId`](SensitiveKind::NationalId) | UK National Insurance numbers (`AB 12 34 56 C`, valid prefix letters, suffix A–D) and Dutch BSNs (nine digits passing the 11-test, after `BSN`/`burgerservicenummer`/`sofinummer`) |
/// | [`ApiKey`](SensitiveKind::ApiKey) | vendor prefixes (`sk-`, `sk-ant-`, `sk_live_`/`rk_live_`/`sk_test_`, `AKIA`/`ASIA`, `ghp_`/`gho_`/`ghs_`/`ghu_`/`ghr_`, `github_pat_`, `glpat-`, `xoxb-`/`xoxp-`…, `AIza`, `hf_`, `npm_`, `pypi-`), JSON Web Tokens (`eyJ…` in three parts), PEM private-key blocks, and long high-entropy strings (20–512 characters mixing upper case, lower case and digits, with a Shannon entropy above a threshold that grows with length; not inside URLs or paths) |
/// | [`Custom`](SensitiveKind::Custom) | the user's regular expression ([`SensitiveDataRule::pattern`]) |
///
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(docsrs, doc(cfg(feature = "sensitive")))]
#[non_exhaustive]
pub enum SensitiveKind {
    /// A payment card number (`card`, masked `[CARD]`).
    Card,
    /// An IBAN (`iban`, masked `[IBAN]`).
    Iban,
    /// An e-mail address (`email`, masked `[EMAIL]`).
    Email,
    /// A phone number (`phone`, masked `[PHONE]`).
    Phone,
    /// A US Social Security number (`ssn`, masked `[SSN]`).
    Ssn,
    /// A national identifier other than an SSN: a UK National Insurance number or a Dutch
    /// BSN (`national_id`, masked `[NATIONAL_ID]`).
    NationalId,
    /// An API key, token or private key (`api_key`, masked `[API_KEY]`).
    ApiKey,
    /// A user pattern, by its name (masked `[NAME]`, the name in upper case).
    Custom(Arc<str>),
}

impl SensitiveKind {
    /// Every built-in kind, the default of [`SensitiveDataRule::kinds`].
    pub const BUILT_IN: &'static [SensitiveKind] = &[
        SensitiveKind::Card,
        SensitiveKind::Iban,
        SensitiveKind::Email,
        SensitiveKind::Phone,
        SensitiveKind::Ssn,
        SensitiveKind::NationalId,
        SensitiveKind::ApiKey,
    ];

    /// The kind's name, as written in a config file and in `meta.routing` (`card`, `iban`,
    /// `email`, `phone`, `ssn`, `national_id`, `api_key`, or a user pattern's name).
    pub fn name(&self) -> &str {
        match self {
            SensitiveKind::Card => "card",
            SensitiveKind::Iban => "iban",
            SensitiveKind::Email => "email",
            SensitiveKind::Phone => "phone",
            SensitiveKind::Ssn => "ssn",
            SensitiveKind::NationalId => "national_id",
            SensitiveKind::ApiKey => "api_key",
            SensitiveKind::Custom(name) => name,
        }
    }

    /// The built-in kind named `name` (see [`name`](Self::name)); `None` for any other.
    pub fn from_name(name: &str) -> Option<SensitiveKind> {
        Self::BUILT_IN.iter().find(|k| k.name() == name).cloned()
    }

    /// What a masked span becomes: the name in upper case in brackets (`[CARD]`,
    /// `[EMPLOYEE_ID]`).
    pub fn mask(&self) -> String {
        format!("[{}]", self.name().to_ascii_uppercase())
    }

    /// The bit of a built-in kind in a [`KindSet`].
    fn bit(&self) -> u8 {
        match self {
            SensitiveKind::Card => 1,
            SensitiveKind::Iban => 1 << 1,
            SensitiveKind::Email => 1 << 2,
            SensitiveKind::Phone => 1 << 3,
            SensitiveKind::Ssn => 1 << 4,
            SensitiveKind::NationalId => 1 << 5,
            SensitiveKind::ApiKey => 1 << 6,
            SensitiveKind::Custom(_) => 0,
        }
    }
}

impl fmt::Display for SensitiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Sensitive data found in a text: its kind and where it is (a byte range of the text, on
/// character boundaries). The value is not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "sensitive")))]
#[non_exhaustive]
pub struct Finding {
    /// What was found.
    pub kind: SensitiveKind,
    /// Where, in bytes.
    pub span: Range<usize>,
}

/// A set of built-in kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KindSet(u8);

impl KindSet {
    const ALL: KindSet = KindSet(0x7f);

    fn has(self, kind: &SensitiveKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// Finds every built-in kind of sensitive data in `text`, in order, spans not overlapping
/// (where two detectors claim the same bytes, the span that starts first wins). Linear in
/// the length of `text`.
///
/// ```
/// use polyrelay::routing::{SensitiveKind, detect_sensitive};
/// let text = "Card 4111 1111 1111 1111, mail jane@example.com, order 4111111111111111";
/// let found = detect_sensitive(text);
/// let kinds: Vec<_> = found.iter().map(|f| f.kind.clone()).collect();
/// assert_eq!(kinds, [SensitiveKind::Card, SensitiveKind::Email]);
/// assert_eq!(&text[found[0].span.clone()], "4111 1111 1111 1111");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sensitive")))]
pub fn detect_sensitive(text: &str) -> Vec<Finding> {
    let mut hits = Vec::new();
    detect::scan(text, KindSet::ALL, &mut hits);
    detect::resolve(&mut hits);
    hits
}
