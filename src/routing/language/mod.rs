//! Routing by the language and the script of the last user message ([`LanguageRule`]).
//!
//! Two stages, cheapest and surest first:
//!
//! 1. **Script**, by counting letters (our own Unicode tables, no model): settles Chinese,
//!    Japanese and Korean even for a two-character message, and any other script a route is
//!    mapped to.
//! 2. **Language**, by [whatlang](https://docs.rs/whatlang) (trigram and alphabet models over
//!    70 languages), taken only when its confidence reaches the rule's threshold. For
//!    Latin- and Cyrillic-script text, whatlang's method is computed by our own scorer on
//!    whatlang's models (the same answers, tested, at under half the cost).
//!
//! Both stages look at the *prose* of the message: code spans and fenced blocks, URLs, e-mail
//! addresses and code-like tokens are set aside first, and at most the first
//! [`LanguageRule::MAX_PROSE_CHARS`] characters of what remains are used.

use std::sync::Arc;

use async_trait::async_trait;

use super::scorer::{self, ModelScript, Selection};
use super::script::SCRIPTS;
pub use super::script::Script;
use super::{RouteChoice, Router, RouterContext, RoutingQuery};

/// What [`detect_language`] finds in a text: the dominant script by the script stage's
/// counting, and the language whatlang detects, with the confidence the language stage
/// compares to [`LanguageRule::min_confidence`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
#[non_exhaustive]
pub struct LanguageDetection {
    /// Letters counted in the prose (code, URLs and code-like tokens set aside, at most
    /// [`LanguageRule::MAX_PROSE_CHARS`] characters).
    pub letters: usize,
    /// The script the script stage settles on, if any: Hangul or Han/Kana when they make up
    /// at least 30 % of the letters (Kana as soon as one kana is among them), else the
    /// script of at least half of the letters.
    pub script: Option<Script>,
    /// The share of the letters (0.0–1.0) written in [`script`](Self::script); for
    /// [`Script::Kana`], kana and Han together. 0.0 without a script.
    pub script_share: f64,
    /// The language whatlang detects, as its ISO 639-3 code (`eng`, `cmn`, `jpn`…).
    pub language: Option<&'static str>,
    /// The confidence in [`language`](Self::language), 0.0–1.0: whatlang's, except that
    /// Chinese from fewer than 10 Han characters and no kana is scaled down (n / 10), since
    /// Japanese written in kanji alone (返品, 注文) is the same characters. 0.0 without a
    /// language.
    pub confidence: f64,
}

/// Detects the script and the language of `text` as [`LanguageRule`] does (see
/// [`LanguageDetection`]): on its prose only, at most the first
/// [`LanguageRule::MAX_PROSE_CHARS`] characters.
///
/// ```
/// use polyrelay::routing::{Script, detect_language};
/// let d = detect_language("我的订单还没有到，请帮我查一下物流状态。");
/// assert_eq!((d.script, d.language), (Some(Script::Han), Some("cmn")));
/// assert_eq!(detect_language("退款").script, Some(Script::Han));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
pub fn detect_language(text: &str) -> LanguageDetection {
    let Prose {
        text: prose,
        counts,
        ..
    } = prose(text);
    let (script, script_share) = counts.dominant().map_or((None, 0.0), |(s, x)| (Some(s), x));
    let found = (counts.letters > 0)
        .then(|| detect_prose(&prose, main_script(&prose, &counts)?, &Allowed::All))
        .flatten();
    let (language, confidence) = match found {
        Some((lang, confidence)) => (
            Some(lang.code()),
            adjusted_confidence(lang, confidence, &counts),
        ),
        None => (None, 0.0),
    };
    LanguageDetection {
        letters: counts.letters,
        script,
        script_share,
        language,
        confidence,
    }
}

/// Routes by the script, then the language, of the last user message.
///
/// ```
/// use polyrelay::routing::{LanguageRule, Rules, Script};
/// let rules = Rules::new("general").rule(
///     "language",
///     LanguageRule::new()
///         .script(Script::Han, "qwen")      // Chinese, even "退款"
///         .script(Script::Kana, "japanese") // Japanese
///         .script(Script::Hangul, "korean")
///         .language("fra", "mistral")       // French, when whatlang is sure enough
///         .min_confidence(0.6),
/// );
/// ```
///
/// **Script rules** ([`script`](Self::script)) come first. Letters are counted by script over
/// the message's prose: Hangul, or Han and kana together, making up at least 30 % of the
/// letters decide (a CJK character carries about a word, so 30 % of the letters is most of
/// the words): Hangul if it has more letters than Han and kana, else Kana if there is any
/// kana, else Han. Otherwise the script of at least half of the letters decides. Script
/// rules need no model and are reliable on the shortest text (`退款`, `返品`, `환불`); a
/// message in Han characters only is [`Script::Han`] even when it is Japanese written in
/// kanji alone. The reason reads `script han (100 % of letters)`.
///
/// **Language rules** ([`language`](Self::language)) come next, when no script rule
/// matched: whatlang's detection must reach [`min_confidence`](Self::min_confidence)
/// (default [`DEFAULT_MIN_CONFIDENCE`](Self::DEFAULT_MIN_CONFIDENCE)) and name a language
/// that has a route. The reason reads `language fra (0.97)`. whatlang is good on a sentence
/// and unreliable on one to three words: "ok", "merci", "refund please" score far below 0.5
/// and pass. It is also weak on a few close pairs (Russian is sometimes read as Bulgarian,
/// Hindi scores low): route those by script when a script is enough.
///
/// Otherwise the rule passes (`None`) and the next rule decides. The rule's label
/// ([`RouteChoice::label`]) is the language code or the script name.
///
/// **Prose only.** Before either stage, the rule sets aside Markdown code (`` `spans` `` and
/// fenced blocks, ```` ``` ```` or `~~~`), and ASCII tokens that look like code or
/// addresses: those holding any of `_ = { } [ ] ( ) < > ; : / \ | * & $ @ ^ ~ + # % "`, a dot
/// between letters (`foo.bar`, `example.com`), or letters and digits mixed (`u32`,
/// `E0382`). A Rust snippet with an English question is judged on the question alone, and
/// pasted code or a URL does not outweigh a short Chinese sentence. At most the first 64 KiB
/// of the message are scanned, and the first [`MAX_PROSE_CHARS`](Self::MAX_PROSE_CHARS)
/// characters of prose used.
///
/// **Cost.** The script stage is one pass over the prose: on a 500-character message about
/// 40 000 instructions for English, 85 000 for Chinese (a few µs). The language stage runs
/// only when a language route is configured, no script rule matched, and the message's
/// script is one that some configured language is written in: a rule with only `cmn`,
/// `jpn` and `kor` never runs it on a Latin-script message. On Latin- and Cyrillic-script
/// text the language stage is whatlang's method computed by our scorer (see the module
/// docs): the whole rule costs about 160 000 instructions (15–20 µs) on a 500-character
/// English message with the default candidates, 205 000 with
/// [`all_languages`](Self::all_languages), 260 000 on Russian; whatlang itself took 360 000
/// and 700 000. Other scripts go to whatlang (about 60 000 instructions on CJK text).
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
pub struct LanguageRule {
    scripts: Vec<(Script, Arc<str>)>,
    languages: Vec<(String, Arc<str>)>,
    /// whatlang's scripts some configured language can be detected in.
    language_scripts: Vec<whatlang::Script>,
    min_confidence: f64,
    /// The languages detection chooses among (`None`: all whatlang knows), the configured
    /// ones always included.
    candidates: Option<Vec<whatlang::Lang>>,
    allowed: Allowed,
}

/// The languages a [`LanguageRule`] tells apart by default, besides those it routes: the
/// most common languages of support tickets. Fewer candidates cost a little less and are
/// confused less often; a language left out is read as its closest candidate.
pub const DEFAULT_CANDIDATES: &[&str] = &[
    "eng", "fra", "deu", "spa", "ita", "por", "rus", "ukr", "cmn", "jpn", "kor", "ara", "heb",
    "hin", "ell", "tha",
];

impl Default for LanguageRule {
    fn default() -> Self {
        Self::new()
    }
}

impl LanguageRule {
    /// The default [`min_confidence`](Self::min_confidence): 0.5. whatlang gives 1.0 to most
    /// sentences of a clear language, 0.3–0.6 to short or near-neighbour sentences, and less
    /// than 0.3 to one to three words.
    pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.5;

    /// How many characters of prose the rule looks at, from the start of the message.
    pub const MAX_PROSE_CHARS: usize = 500;

    /// A rule with no routes (it passes on every message) and the default threshold.
    pub fn new() -> Self {
        LanguageRule {
            scripts: Vec::new(),
            languages: Vec::new(),
            language_scripts: Vec::new(),
            min_confidence: Self::DEFAULT_MIN_CONFIDENCE,
            candidates: Some(
                DEFAULT_CANDIDATES
                    .iter()
                    .filter_map(|c| whatlang::Lang::from_code(*c))
                    .collect(),
            ),
            allowed: Allowed::All,
        }
        .with_detector()
    }

    /// Rebuilds the detector for the candidates and the configured languages.
    fn with_detector(mut self) -> Self {
        self.allowed = match &self.candidates {
            None => Allowed::All,
            Some(list) => {
                let mut all = list.clone();
                for (code, _) in &self.languages {
                    if let Some(l) = whatlang::Lang::from_code(code.as_str())
                        && !all.contains(&l)
                    {
                        all.push(l);
                    }
                }
                Allowed::only(all)
            }
        };
        self
    }

    /// The languages detection chooses among, besides the routed ones (ISO 639-3 codes;
    /// unknown codes are ignored). Default [`DEFAULT_CANDIDATES`]. A message in a language
    /// outside the list is read as the closest candidate, usually with a lower confidence;
    /// fewer Latin-script candidates make detection faster.
    pub fn candidates(mut self, codes: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.candidates = Some(
            codes
                .into_iter()
                .filter_map(|c| whatlang::Lang::from_code(c.as_ref().trim().to_ascii_lowercase()))
                .collect(),
        );
        self.with_detector()
    }

    /// Detection chooses among every language whatlang knows (70): the widest choice, and on
    /// Latin-script text about a fifth slower than the default candidates.
    pub fn all_languages(mut self) -> Self {
        self.candidates = None;
        self.with_detector()
    }

    /// Sends messages written in `script` (see the type's docs for how it is decided) to
    /// `route`. Script rules are checked before language rules, so a route for
    /// [`Script::Latin`] takes every Latin-script message before a language rule such as
    /// `fra` can. Naming a script again replaces its route.
    pub fn script(mut self, script: Script, route: impl Into<Arc<str>>) -> Self {
        let route = route.into();
        match self.scripts.iter_mut().find(|(s, _)| *s == script) {
            Some(entry) => entry.1 = route,
            None => self.scripts.push((script, route)),
        }
        self
    }

    /// Sends messages whatlang detects as `code` (ISO 639-3, as whatlang names them: `eng`,
    /// `fra`, `deu`, `spa`, `rus`, `cmn`, `jpn`, `kor`, `ara`, `hin`, `tur`…; case and
    /// surrounding spaces ignored) with at least [`min_confidence`](Self::min_confidence) to
    /// `route`. Naming a language again replaces its route.
    ///
    /// A code whatlang does not know (two-letter codes such as `en` or `zh` included) never
    /// matches; the rule logs a warning when it is added.
    pub fn language(mut self, code: impl AsRef<str>, route: impl Into<Arc<str>>) -> Self {
        let code = code.as_ref().trim().to_ascii_lowercase();
        let route = route.into();
        match whatlang::Lang::from_code(code.as_str()) {
            Some(lang) => {
                for &s in whatlang::Script::all() {
                    if s.langs().contains(&lang) && !self.language_scripts.contains(&s) {
                        self.language_scripts.push(s);
                    }
                }
                // whatlang reads Japanese off Han-majority text too.
                if lang == whatlang::Lang::Jpn
                    && !self.language_scripts.contains(&whatlang::Script::Mandarin)
                {
                    self.language_scripts.push(whatlang::Script::Mandarin);
                }
            }
            None => tracing::warn!(
                code = %code,
                "LanguageRule: not an ISO 639-3 code that whatlang detects (e.g. eng, cmn, \
                 jpn); this language rule never matches"
            ),
        }
        match self.languages.iter_mut().find(|(c, _)| *c == code) {
            Some(entry) => entry.1 = route,
            None => self.languages.push((code, route)),
        }
        self.with_detector()
    }

    /// The confidence a detected language needs (0.0–1.0, clamped; NaN keeps the current
    /// value) for a language rule to match. Default
    /// [`DEFAULT_MIN_CONFIDENCE`](Self::DEFAULT_MIN_CONFIDENCE). Script rules do not use it.
    pub fn min_confidence(mut self, min: f64) -> Self {
        if !min.is_nan() {
            self.min_confidence = min.clamp(0.0, 1.0);
        }
        self
    }

    /// The rule's decision for `text` (the router calls it on the last user message): a
    /// script rule, else a confident language rule, else `None`.
    pub fn choose(&self, text: &str) -> Option<RouteChoice> {
        if self.scripts.is_empty() && self.languages.is_empty() {
            return None;
        }
        let Prose {
            text: prose,
            counts,
            ..
        } = prose(text);
        if let Some((script, share)) = counts.dominant()
            && let Some((_, route)) = self.scripts.iter().find(|(s, _)| *s == script)
        {
            let percent = (share * 100.0).round();
            let reason = if script == Script::Kana {
                format!("script kana ({percent} % of letters in kana or han)")
            } else {
                format!("script {script} ({percent} % of letters)")
            };
            return Some(RouteChoice::new(route.clone(), reason).with_label(script.name()));
        }
        if self.languages.is_empty() || counts.letters == 0 {
            return None;
        }
        let main = main_script(&prose, &counts)?;
        if !self.language_scripts.contains(&main) {
            return None;
        }
        let (lang, confidence) = detect_prose(&prose, main, &self.allowed)?;
        let confidence = adjusted_confidence(lang, confidence, &counts);
        if confidence < self.min_confidence {
            return None;
        }
        let code = lang.code();
        let (_, route) = self.languages.iter().find(|(c, _)| c == code)?;
        Some(
            RouteChoice::new(route.clone(), format!("language {code} ({confidence:.2})"))
                .with_label(code),
        )
    }
}

#[async_trait]
impl Router for LanguageRule {
    async fn route(&self, q: &RoutingQuery<'_>, _: &RouterContext<'_>) -> Option<RouteChoice> {
        self.choose(&q.last_user_text)
    }

    fn routes(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        let scripts = self.scripts.iter().map(|(_, r)| r);
        for r in scripts.chain(self.languages.iter().map(|(_, r)| r)) {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

/// Below this many Han characters (and no kana), a Chinese detection is scaled down.
const HAN_ONLY_FULL_CONFIDENCE: usize = 10;

/// CJK (Han + kana) or Hangul letters needed, as a share of all letters, to decide the
/// script.
const CJK_SHARE: f64 = 0.3;

/// The share of letters another script needs to decide.
const MAJORITY_SHARE: f64 = 0.5;

/// How much of a message is scanned for prose.
const MAX_SCAN_BYTES: usize = 64 * 1024;

/// The languages detection may choose.
#[derive(Clone, Debug)]
enum Allowed {
    /// Every language whatlang knows.
    All,
    /// These, as a whatlang detector and as the fast scorer's selections.
    Only {
        detector: whatlang::Detector,
        latin: Option<Arc<Selection>>,
        cyrillic: Option<Arc<Selection>>,
    },
}

impl Allowed {
    fn only(langs: Vec<whatlang::Lang>) -> Allowed {
        let select = |s| scorer::model(s).map(|m| Arc::new(m.select(langs.iter().copied())));
        Allowed::Only {
            latin: select(ModelScript::Latin),
            cyrillic: select(ModelScript::Cyrillic),
            detector: whatlang::Detector::with_allowlist(langs),
        }
    }
}

/// whatlang's main script of `prose`: its most frequent script, found by our counts when
/// Latin or Cyrillic leads.
fn main_script(prose: &str, counts: &ScriptCounts) -> Option<whatlang::Script> {
    match counts.sole_leader(&[Script::Latin, Script::Cyrillic]) {
        Some(Script::Latin) => Some(whatlang::Script::Latin),
        Some(_) => Some(whatlang::Script::Cyrillic),
        None => whatlang::detect_script(prose),
    }
}

/// The language of `prose`, whose main script is `main` (whatlang's detection, among the
/// `allowed` languages) and whatlang's confidence. Latin and Cyrillic text goes to the fast
/// scorer (the same answers as whatlang, a fraction of its cost); other text to whatlang.
fn detect_prose(
    prose: &str,
    main: whatlang::Script,
    allowed: &Allowed,
) -> Option<(whatlang::Lang, f64)> {
    let script = match main {
        whatlang::Script::Latin => Some(ModelScript::Latin),
        whatlang::Script::Cyrillic => Some(ModelScript::Cyrillic),
        _ => None,
    };
    if let Some(script) = script
        && let Some(model) = scorer::model(script)
    {
        let selection = match allowed {
            Allowed::All => Some(model.everything()),
            Allowed::Only {
                latin, cyrillic, ..
            } => match script {
                ModelScript::Latin => latin.as_deref(),
                ModelScript::Cyrillic => cyrillic.as_deref(),
            },
        };
        if let Some(selection) = selection {
            return model.detect(prose, selection);
        }
    }
    let info = match allowed {
        Allowed::All => whatlang::detect(prose)?,
        Allowed::Only { detector, .. } => detector.detect(prose)?,
    };
    Some((info.lang(), info.confidence()))
}

/// whatlang's confidence, with Chinese from a few Han characters (and no kana) scaled down.
fn adjusted_confidence(lang: whatlang::Lang, c: f64, counts: &ScriptCounts) -> f64 {
    if lang == whatlang::Lang::Cmn && counts.get(Script::Kana) == 0 {
        let han = counts.get(Script::Han);
        if han < HAN_ONLY_FULL_CONFIDENCE {
            return c * han as f64 / HAN_ONLY_FULL_CONFIDENCE as f64;
        }
    }
    c
}

/// Letters per script.
struct ScriptCounts {
    by_script: [usize; SCRIPTS.len()],
    letters: usize,
}

impl ScriptCounts {
    fn new() -> Self {
        ScriptCounts {
            by_script: [0; SCRIPTS.len()],
            letters: 0,
        }
    }

    fn add(&mut self, script: Option<Script>) {
        if let Some(s) = script {
            self.by_script[s as usize] += 1;
        }
        self.letters += 1;
    }

    fn get(&self, s: Script) -> usize {
        self.by_script[s as usize]
    }

    /// The one of `scripts` that has more letters than any other script, if any.
    fn sole_leader(&self, scripts: &[Script]) -> Option<Script> {
        let untracked = self.letters - self.by_script.iter().sum::<usize>();
        scripts.iter().copied().find(|&s| {
            let n = self.get(s);
            n > untracked
                && self
                    .by_script
                    .iter()
                    .enumerate()
                    .all(|(i, &m)| i == s as usize || m < n)
        })
    }

    /// The deciding script and its share (see [`LanguageRule`]).
    fn dominant(&self) -> Option<(Script, f64)> {
        if self.letters == 0 {
            return None;
        }
        let total = self.letters as f64;
        let hangul = self.get(Script::Hangul);
        let kana = self.get(Script::Kana);
        let cjk = self.get(Script::Han) + kana;
        if hangul.max(cjk) as f64 >= CJK_SHARE * total {
            return Some(if hangul > cjk {
                (Script::Hangul, hangul as f64 / total)
            } else if kana > 0 {
                (Script::Kana, cjk as f64 / total)
            } else {
                (Script::Han, cjk as f64 / total)
            });
        }
        let (i, &n) = self
            .by_script
            .iter()
            .enumerate()
            .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))?;
        let share = n as f64 / total;
        (n > 0 && share >= MAJORITY_SHARE).then(|| (SCRIPTS[i], share))
    }
}

/// The prose of `text`: its whitespace-separated words outside Markdown code, minus
/// code-like ASCII tokens, joined by single spaces, at most
/// [`LanguageRule::MAX_PROSE_CHARS`] characters, normalised for the detectors
/// ([`Prose::push`]), with its letters counted by script.
fn prose(text: &str) -> Prose {
    let text = prefix(text, MAX_SCAN_BYTES);
    let mut out = Prose {
        text: String::with_capacity(text.len().min(LanguageRule::MAX_PROSE_CHARS * 3)),
        chars: 0,
        counts: ScriptCounts::new(),
    };
    let bytes = text.as_bytes();
    let mut start = 0; // start of the pending prose segment
    let mut i = 0;
    while let Some(off) = memchr::memchr2(b'`', b'~', &bytes[i..]) {
        let at = i + off;
        let marker = bytes[at];
        let run = bytes[at..].iter().take_while(|&&b| b == marker).count();
        let end = if marker == b'`' {
            // A run of n backticks opens a span the next run of exactly n closes (a fence
            // when n >= 3); an unmatched fence runs to the end, an unmatched short run is
            // kept as text.
            match closing_backticks(bytes, at + run, run) {
                Some(close) => Some(close),
                None if run >= 3 => Some(bytes.len()),
                None => None,
            }
        } else if run >= 3 && at_line_start(bytes, at) {
            Some(closing_tilde_fence(bytes, at + run, run).unwrap_or(bytes.len()))
        } else {
            None
        };
        match end {
            Some(end) => {
                if out.push_words(&text[start..at]) {
                    return out;
                }
                start = end;
                i = end;
            }
            None => i = at + run,
        }
        if i >= bytes.len() {
            break;
        }
    }
    if start < text.len() {
        out.push_words(&text[start..]);
    }
    out
}

/// The prose collected so far.
struct Prose {
    text: String,
    chars: usize,
    counts: ScriptCounts,
}

impl Prose {
    /// Appends the prose words of `segment`; true once the character budget is spent.
    fn push_words(&mut self, segment: &str) -> bool {
        for word in segment.split_whitespace() {
            if code_like(word) {
                continue;
            }
            if !self.text.is_empty() {
                self.text.push(' ');
                self.chars += 1;
            }
            if word.is_ascii() {
                // What `push` does to each ASCII character, a word at a time.
                let part = &word[..word.len().min(
                    LanguageRule::MAX_PROSE_CHARS - self.chars.min(LanguageRule::MAX_PROSE_CHARS),
                )];
                let letters = part.bytes().filter(u8::is_ascii_alphabetic).count();
                self.counts.by_script[Script::Latin as usize] += letters;
                self.counts.letters += letters;
                self.text.push_str(part);
                self.chars += part.len();
                if self.chars >= LanguageRule::MAX_PROSE_CHARS {
                    return true;
                }
                continue;
            }
            for c in word.chars() {
                if self.chars >= LanguageRule::MAX_PROSE_CHARS {
                    return true;
                }
                self.push(c);
            }
            if self.chars >= LanguageRule::MAX_PROSE_CHARS {
                return true;
            }
        }
        false
    }

    /// Counts `c` and appends it as the detectors should see it: full-width ASCII as ASCII,
    /// and other punctuation and symbols outside ASCII as a space (whatlang counts the whole
    /// half-width and full-width block, the `，？！` of Chinese and Japanese text included, as
    /// Hangul, and Latin-1 punctuation such as `¿` or `«` as Latin). Letters and combining
    /// marks are kept, except half-width katakana, which whatlang also takes for Hangul:
    /// counted as kana, but hidden from whatlang.
    fn push(&mut self, c: char) {
        self.chars += 1;
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(' '),
            _ => c,
        };
        if c.is_ascii() {
            if c.is_ascii_alphabetic() {
                self.counts.add(Some(Script::Latin));
            }
            self.text.push(c);
            return;
        }
        if let Some(script) = Script::of(c) {
            self.counts.add(Some(script));
            let halfwidth_kana = matches!(c as u32, 0xFF66..=0xFF9F);
            self.text.push(if halfwidth_kana { ' ' } else { c });
            return;
        }
        let keep = match c as u32 {
            0xFF00..=0xFFEF => false,
            // Zero-width (non-)joiners are parts of words in Persian and Indic scripts.
            0x200C | 0x200D => true,
            // Combining marks (Indic and South-East Asian blocks whole).
            0x0300..=0x036F
            | 0x0483..=0x0489
            | 0x0591..=0x05C7
            | 0x0610..=0x061A
            | 0x064B..=0x065F
            | 0x0670
            | 0x06D6..=0x06ED
            | 0x0900..=0x0DFF
            | 0x0E00..=0x0EFF
            | 0x1000..=0x109F
            | 0x1780..=0x17FF
            | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF
            | 0x20D0..=0x20FF
            | 0xFE20..=0xFE2F
            | 0x3099..=0x309A => true,
            _ => {
                // A letter of a script not listed (Tibetan, Mongolian…) still counts.
                let letter = c.is_alphabetic();
                if letter {
                    self.counts.add(None);
                }
                letter
            }
        };
        self.text.push(if keep { c } else { ' ' });
    }
}

/// Whether a whitespace-separated token looks like code, a path, a URL or an address rather
/// than a word. Tokens with a non-ASCII letter are always words (identifiers are ASCII; CJK
/// text has no spaces, so its tokens are whole clauses).
fn code_like(token: &str) -> bool {
    let core = if token.is_ascii() {
        // The same trimming, byte-wise (`trim_matches` with a list of chars is slow).
        let bytes = token.as_bytes();
        let start = bytes
            .iter()
            .position(|b| !matches!(b, b'(' | b'[' | b'"' | b'\'' | b'*'))
            .unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| {
                !matches!(
                    b,
                    b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']' | b'"' | b'\'' | b'*'
                )
            })
            .map_or(start, |p| (p + 1).max(start));
        token.get(start..end).unwrap_or("")
    } else {
        token
            .trim_start_matches(['(', '[', '"', '\'', '*', '¿', '¡', '«', '“', '‘'])
            .trim_end_matches([
                '.', ',', ';', ':', '!', '?', ')', ']', '"', '\'', '*', '»', '”', '’', '…',
            ])
    };
    let mut letters = false;
    let mut digits = false;
    let mut code = false;
    let mut prev_letter = false;
    let mut dot_after_letter = false;
    for c in core.chars() {
        if !c.is_ascii() {
            if c.is_alphabetic() {
                return false;
            }
            prev_letter = false;
            continue;
        }
        match c {
            'a'..='z' | 'A'..='Z' => {
                letters = true;
                if dot_after_letter {
                    code = true;
                }
                prev_letter = true;
                continue;
            }
            '0'..='9' => digits = true,
            '.' => dot_after_letter = prev_letter,
            '_' | '=' | '{' | '}' | '[' | ']' | '(' | ')' | '<' | '>' | ';' | ':' | '/' | '\\'
            | '|' | '*' | '&' | '$' | '@' | '^' | '~' | '+' | '#' | '%' | '"' | '`' => code = true,
            _ => {}
        }
        if c != '.' {
            dot_after_letter = false;
        }
        prev_letter = false;
    }
    letters && (code || digits)
}

/// The index just past the next run of exactly `n` backticks at or after `from`.
fn closing_backticks(bytes: &[u8], from: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        let at = i + memchr::memchr(b'`', &bytes[i..])?;
        let run = bytes[at..].iter().take_while(|&&b| b == b'`').count();
        if run == n {
            return Some(at + run);
        }
        i = at + run;
    }
    None
}

/// Whether `at` starts a line, after at most three spaces.
fn at_line_start(bytes: &[u8], at: usize) -> bool {
    let line = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    at - line <= 3 && bytes[line..at].iter().all(|&b| b == b' ')
}

/// The index just past a closing fence of at least `n` tildes at the start of a line after
/// `from`.
fn closing_tilde_fence(bytes: &[u8], from: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        let at = i + memchr::memchr(b'~', &bytes[i..])?;
        let run = bytes[at..].iter().take_while(|&&b| b == b'~').count();
        if run >= n && at_line_start(bytes, at) {
            return Some(at + run);
        }
        i = at + run;
    }
    None
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
#[path = "language_tests.rs"]
mod tests;
