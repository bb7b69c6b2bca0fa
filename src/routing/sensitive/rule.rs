//! [`SensitiveDataRule`]: the detectors as a routing rule, with masking.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Finding, KindSet, SensitiveKind, detect};
use crate::relay::{RouteChoice, Router, RouterContext, RoutingQuery};
use crate::types::{ChatRequest, Content, ContentPart, Error, ErrorKind};

/// Longest user pattern name.
const MAX_NAME: usize = 64;
/// The most memory one compiled user pattern may take (the regex crate's size limit).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Routes a request whose messages hold sensitive data — payment card numbers, IBANs, e-mail
/// addresses, phone numbers, US SSNs and other national identifiers, API keys and tokens,
/// and the user's own patterns ([`SensitiveKind`] says how each is found) — to a route
/// of its own, and/or masks it before it is sent.
///
/// ```
/// use polyrelay::routing::{Rules, SensitiveDataRule, SensitiveKind};
/// // Cards, IBANs, SSNs and employee ids stay on-prem; e-mail addresses and phone numbers
/// // are masked before any other route sees them.
/// let rules = Rules::new("cloud")
///     .rule(
///         "keep-on-prem",
///         SensitiveDataRule::new("onprem")
///             .kinds([SensitiveKind::Card, SensitiveKind::Iban, SensitiveKind::Ssn])
///             .pattern("employee_id", "EMP-[0-9]{6}")?,
///     )
///     .rule(
///         "mask",
///         SensitiveDataRule::masking().kinds([SensitiveKind::Email, SensitiveKind::Phone]),
///     );
/// # Ok::<(), polyrelay::Error>(())
/// ```
///
/// **What is scanned.** The text of every message (system, user, assistant and tool
/// results; a multi-part message's text parts). Not scanned: message names, tool-call
/// arguments, images, fields this crate does not model.
///
/// **What it does on a match** of one of its kinds ([`kinds`](Self::kinds), default every
/// built-in kind, plus every [`pattern`](Self::pattern)):
/// - [`new(route)`](Self::new): picks `route` (e.g. on-prem) and sends the request as it is;
///   the reason reads `sensitive data: card, email`, the label `card,email`.
/// - [`masking()`](Self::masking): replaces each found span with its kind's mask (`[CARD]`,
///   `[EMAIL]`, `[IBAN]`, `[PHONE]`, `[SSN]`, `[NATIONAL_ID]`, `[API_KEY]`, a pattern's
///   `[NAME]`) and passes: the rules after it and the route finally chosen see the masked
///   request ([`RoutingQuery::rewrite`]); the decision's reason ends `; RULE: masked card,
///   email`.
/// - [`new(route).masked(true)`](Self::masked): both — picks `route` and sends it masked.
///
/// Without a match it passes and changes nothing. Masking is **one-way**: the vendor never
/// sees the values, and nothing maps a mask back to its value (an answer that quotes
/// `[CARD]` reaches the caller as `[CARD]`). Values never appear in `meta.routing`, in logs,
/// in errors or in `Debug` output: only kinds and counts.
///
/// **Cost.** Linear in the text: about 0.3–1 µs a KiB for the built-in kinds in release
/// (see `benches/sensitive.rs`), plus the user patterns (the `regex` crate: linear time, no
/// backtracking). A 1 MiB message costs about a millisecond, never more.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "sensitive")))]
pub struct SensitiveDataRule {
    /// Where a match goes: `None` masks and passes.
    route: Option<Arc<str>>,
    mask: bool,
    kinds: KindSet,
    patterns: Vec<(SensitiveKind, regex::Regex)>,
}

impl fmt::Debug for SensitiveDataRule {
    /// The route, whether it masks, the kinds and the patterns' names and expressions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = SensitiveKind::BUILT_IN
            .iter()
            .filter(|k| self.kinds.has(k))
            .map(SensitiveKind::name)
            .collect();
        let patterns: Vec<(&str, &str)> = self
            .patterns
            .iter()
            .map(|(k, r)| (k.name(), r.as_str()))
            .collect();
        f.debug_struct("SensitiveDataRule")
            .field("route", &self.route)
            .field("mask", &self.mask)
            .field("kinds", &kinds)
            .field("patterns", &patterns)
            .finish()
    }
}

impl SensitiveDataRule {
    /// A rule that sends requests holding sensitive data of any built-in kind to `route`,
    /// unmasked. Narrow it with [`kinds`](Self::kinds), add [`pattern`](Self::pattern)s, mask
    /// with [`masked`](Self::masked).
    pub fn new(route: impl Into<Arc<str>>) -> Self {
        SensitiveDataRule {
            route: Some(route.into()),
            mask: false,
            kinds: KindSet::ALL,
            patterns: Vec::new(),
        }
    }

    /// A rule that masks sensitive data of any built-in kind and passes to the next rule:
    /// the request every later rule and the chosen route see is the masked one.
    pub fn masking() -> Self {
        SensitiveDataRule {
            route: None,
            mask: true,
            kinds: KindSet::ALL,
            patterns: Vec::new(),
        }
    }

    /// Whether a rule made with [`new`](Self::new) also masks what it routes. Default:
    /// `false` (on-prem routes get the request as it is). A [`masking`](Self::masking) rule
    /// always masks.
    pub fn masked(mut self, mask: bool) -> Self {
        self.mask = mask || self.route.is_none();
        self
    }

    /// The built-in kinds this rule acts on. Default: all of them
    /// ([`SensitiveKind::BUILT_IN`]). [`SensitiveKind::Custom`] entries are ignored here:
    /// every [`pattern`](Self::pattern) always counts.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = SensitiveKind>) -> Self {
        self.kinds = KindSet(kinds.into_iter().fold(0, |set, k| set | k.bit()));
        self
    }

    /// Adds the user's own kind `name` (letters, digits and `_`, at most 64; not a built-in
    /// kind's name), found by the regular expression `regex` ([`regex`](https://docs.rs/regex)
    /// syntax: linear time, no look-around or back-references). Its mask is the name in
    /// upper case: `[EMPLOYEE_ID]`. Default: no patterns.
    ///
    /// # Errors
    /// A [`Config`](ErrorKind::Config) error naming the pattern when the name is not valid
    /// or taken, or the expression does not compile (or would take over 1 MiB compiled).
    pub fn pattern(mut self, name: &str, regex: &str) -> Result<Self, Error> {
        check_name(name).map_err(|why| {
            Error::new(
                ErrorKind::Config,
                format!("sensitive-data pattern name {name:?}: {why}"),
            )
        })?;
        if self.patterns.iter().any(|(k, _)| k.name() == name) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("sensitive-data pattern {name:?} is given twice"),
            ));
        }
        let compiled = regex::RegexBuilder::new(regex)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("sensitive-data pattern {name:?} is not a valid regex: {e}"),
                )
            })?;
        self.patterns
            .push((SensitiveKind::Custom(name.into()), compiled));
        Ok(self)
    }

    /// The sensitive data this rule acts on in `text` (its kinds and patterns), in order,
    /// spans not overlapping (the earlier start wins).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        self.scan_into(text, &mut found);
        found
    }

    /// `text` with every span [`scan`](Self::scan) finds replaced by its kind's mask
    /// (`[CARD]`…); borrowed when nothing is found. One-way: the values are gone.
    pub fn mask_text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let found = self.scan(text);
        masked(text, &found)
    }

    fn scan_into(&self, text: &str, found: &mut Vec<Finding>) {
        found.clear();
        if self.kinds != KindSet(0) {
            detect::scan(text, self.kinds, found);
        }
        for (kind, re) in &self.patterns {
            found.extend(
                re.find_iter(text)
                    .filter(|m| !m.is_empty())
                    .map(|m| Finding {
                        kind: kind.clone(),
                        span: m.range(),
                    }),
            );
        }
        detect::resolve(found);
    }

    /// The kinds found in `request`'s messages, and, when masking, the masked request.
    fn inspect(&self, request: &ChatRequest) -> (Vec<SensitiveKind>, Option<ChatRequest>) {
        let mut kinds: Vec<SensitiveKind> = Vec::new();
        let mut found = Vec::new();
        let mut masked_request: Option<ChatRequest> = None;
        for (m, message) in request.messages.iter().enumerate() {
            let texts: Vec<(Option<usize>, &str)> = match &message.content {
                Some(Content::Text(t)) => vec![(None, t.as_str())],
                Some(Content::Parts(parts)) => parts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| match p {
                        ContentPart::Text { text } => Some((Some(i), text.as_str())),
                        _ => None,
                    })
                    .collect(),
                None => Vec::new(),
            };
            for (part, text) in texts {
                self.scan_into(text, &mut found);
                if found.is_empty() {
                    continue;
                }
                for f in &found {
                    if !kinds.contains(&f.kind) {
                        kinds.push(f.kind.clone());
                    }
                }
                if self.mask {
                    let new = masked(text, &found).into_owned();
                    let req = masked_request.get_or_insert_with(|| request.clone());
                    match (&mut req.messages[m].content, part) {
                        (Some(Content::Text(t)), None) => *t = new,
                        (Some(Content::Parts(parts)), Some(i)) => {
                            parts[i] = ContentPart::text(new);
                        }
                        _ => {}
                    }
                }
            }
        }
        kinds.sort();
        (kinds, masked_request)
    }
}

/// Checks a user pattern's name.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err("must be 1 to 64 characters");
    }
    if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err("may hold only ASCII letters, digits and _");
    }
    if SensitiveKind::from_name(&name.to_ascii_lowercase()).is_some() {
        return Err("is a built-in kind's name");
    }
    Ok(())
}

/// `text` with each finding's span replaced by its mask.
fn masked<'t>(text: &'t str, found: &[Finding]) -> Cow<'t, str> {
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.span.start]);
        out.push_str(&f.kind.mask());
        at = f.span.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The kinds' names joined with `sep`.
fn names(kinds: &[SensitiveKind], sep: &str) -> String {
    let names: Vec<&str> = kinds.iter().map(SensitiveKind::name).collect();
    names.join(sep)
}

#[async_trait]
impl Router for SensitiveDataRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        let (kinds, masked_request) = self.inspect(q.request);
        if kinds.is_empty() {
            return None;
        }
        tracing::debug!(
            kinds = %names(&kinds, ","),
            masked = masked_request.is_some(),
            "sensitive data found"
        );
        if let Some(request) = masked_request {
            q.rewrite(request, format!("masked {}", names(&kinds, ", ")));
        }
        let route = self.route.clone()?;
        Some(
            RouteChoice::new(route, format!("sensitive data: {}", names(&kinds, ", ")))
                .with_label(names(&kinds, ",")),
        )
    }

    fn routes(&self) -> Vec<Arc<str>> {
        self.route.iter().cloned().collect()
    }
}
