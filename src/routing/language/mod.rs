//! Routing by the language and the script of the last user message ([`LanguageRule`]).
//!
//! Two stages, cheapest and surest first:
//!
//! 1. **Script**, by counting letters (our own Unicode tables, no model): settles Chinese,
//!    Japanese and Korean even for a two-character message, and any other script a route is
//!    mapped to.
//! 2. **Language**, by [whatlang](https://docs.rs/whatlang)'s trigram and alphabet models
//!    (70 languages), taken only when the rule is sure: the winner must be a routed language,
//!    reach the rule's confidence threshold, and not be outscored by a language the rule does
//!    not route. For Latin- and Cyrillic-script text, whatlang's method is computed by our own
//!    scorer on whatlang's models (the same scores, tested, at a fraction of the cost).
//!
//! Both stages look at the *prose* of the message: code spans and fenced blocks, URLs, e-mail
//! addresses and code-like tokens are set aside first, and at most the first
//! [`LanguageRule::MAX_PROSE_CHARS`] characters of what remains are used.

use std::sync::Arc;

use async_trait::async_trait;
use whatlang::Lang;

mod codes;
mod prose;

use prose::{Dominant, Prose, ScriptCounts, prose};

use super::scorer::{self, ModelScript};
pub use super::script::Script;
use super::{RouteChoice, Router, RouterContext, RoutingQuery};
use crate::Error;

/// What a [`LanguageRule`] makes of a text ([`LanguageRule::detect`]): the script and the
/// language it sees, how sure it is, and what it does.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
#[non_exhaustive]
pub struct LanguageDetection {
    /// Letters counted in the prose (code, URLs and code-like tokens set aside, at most
    /// [`LanguageRule::MAX_PROSE_CHARS`] characters).
    pub letters: usize,
    /// The script the script stage settles on, if any (see [`LanguageRule`]): Han, kana or
    /// Hangul when they weigh at least half of the text or hold a sentence, else the script
    /// of at least half of the letters.
    pub script: Option<Script>,
    /// The share of the letters (0.0–1.0) written in [`script`](Self::script); for
    /// [`Script::Kana`], kana and Han together. 0.0 without a script.
    pub script_share: f64,
    /// When a Han, kana or Hangul sentence decided the script rather than its share: the
    /// sentence's length in characters.
    pub sentence: Option<usize>,
    /// The language the language stage settles on, as its ISO 639-3 code (`eng`, `cmn`,
    /// `nld`…), routed or not. `None` when a script rule decided, when there are no letters,
    /// or when the stage did not run: [`LanguageRule::detect`] runs it whenever the script
    /// has languages to tell apart.
    pub language: Option<&'static str>,
    /// The confidence in [`language`](Self::language), 0.0–1.0: whatlang's, computed against
    /// the best other candidate, and for Chinese from fewer than 10 Han characters (and no
    /// kana) scaled down (n / 10), since Japanese written in kanji alone (返品, 注文) is the
    /// same characters. 1.0 for a script rule's decision; 0.0 without a language.
    pub confidence: f64,
    /// What the rule does with the text.
    pub verdict: Verdict,
}

/// What a [`LanguageRule`] does with a text ([`LanguageDetection::verdict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
#[non_exhaustive]
pub enum Verdict {
    /// Sure of a script or a language that has a route: the rule picks this route.
    Route(Arc<str>),
    /// Sure of a script or a language that has no route: the rule passes.
    NoRoute,
    /// Not sure: no letters, no script with a majority, a language below
    /// [`LanguageRule::min_confidence`], or a routed language outscored by one the rule does
    /// not route. The rule passes.
    Unsure,
}

impl std::fmt::Display for LanguageDetection {
    /// The decision in words, as routing reasons and the rule's debug log show it:
    /// `script han (100 % of letters)`, `language fra (0.97)`, `no route for language nld
    /// (1.00)`, `unsure: language deu (0.31)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.verdict, self.language) {
            (Verdict::Unsure, _) => f.write_str("unsure: ")?,
            (Verdict::NoRoute, _) => f.write_str("no route for ")?,
            (Verdict::Route(_), _) => {}
        }
        if let Some(code) = self.language {
            return write!(f, "language {code} ({:.2})", self.confidence);
        }
        let Some(script) = self.script else {
            return f.write_str(if self.letters == 0 {
                "no letters"
            } else {
                "no script has half of the letters"
            });
        };
        let percent = (self.script_share * 100.0).round();
        let of = if script == Script::Kana {
            "letters in kana or han"
        } else {
            "letters"
        };
        match self.sentence {
            Some(n) => write!(
                f,
                "script {script} (a sentence of {n} characters, {percent} % of {of})"
            ),
            None => write!(f, "script {script} ({percent} % of {of})"),
        }
    }
}

/// Routes by the script, then the language, of the last user message; passes when it is not
/// sure, or when the language it sees has no route.
///
/// ```
/// use polyrelay::routing::{LanguageRule, Rules, Script};
/// let rules = Rules::new("general").rule(
///     "language",
///     LanguageRule::new()
///         .script(Script::Han, "qwen")      // Chinese, even "退款"
///         .script(Script::Kana, "japanese") // Japanese
///         .script(Script::Hangul, "korean")
///         .language("fr", "mistral")?       // French, when the rule is sure
///         .min_confidence(0.6),
/// );
/// # Ok::<(), polyrelay::Error>(())
/// ```
///
/// **Script rules** ([`script`](Self::script)) come first. Letters are counted by script over
/// the message's prose. A Han, kana or Hangul character carries about a word, so it weighs
/// three letters: CJK (Han and kana together) or Hangul weighing at least half of the text
/// decides, and so does a CJK or Hangul *sentence* beside text in another script: a run of
/// at least 8 such characters not broken by a letter of another script, or of 4 closed by
/// `。`, `！`, `？`. A Chinese sentence beside a longer English one is Han; an English
/// sentence naming a product or a person in Chinese (`微信支付`, `王小明`) is not. Hangul
/// wins if it has more characters than Han and kana, else Kana if there is any kana, else
/// Han. Otherwise the script of at least half of the letters decides. Script rules need no
/// model and are reliable on the shortest text (`退款`, `返品`, `환불`); a message in Han
/// characters only is [`Script::Han`] even when it is Japanese written in kanji alone. The
/// reason reads `script han (100 % of letters)`, or `script han (a sentence of 14
/// characters, 30 % of letters)`.
///
/// **Language rules** ([`language`](Self::language)) come next, when no script rule
/// matched. A Han text is Chinese, a kana text Japanese, a Hangul text Korean. Text in other
/// scripts is scored against every language whatlang knows in its script; the rule takes
/// the best of its *candidates* (the routed languages and [`candidates`](Self::candidates),
/// default [`DEFAULT_CANDIDATES`]) when its confidence against the next candidate reaches
/// [`min_confidence`](Self::min_confidence) (default
/// [`DEFAULT_MIN_CONFIDENCE`](Self::DEFAULT_MIN_CONFIDENCE)) and no other language scores
/// a few percent above it (2 % of its score in Latin script, 3 % in Cyrillic). A Dutch or Swedish ticket is thus
/// read as Dutch or Swedish, not as German, and passes when neither is routed; a close call
/// between a routed language and another passes as unsure. The reason reads `language fra
/// (0.97)`. whatlang is good on a sentence and unreliable on one to three words: "ok",
/// "merci", "refund please" score far below 0.5 and pass. It is also weak on a few close
/// pairs (Russian is sometimes read as Bulgarian, Hindi scores low): route those by script
/// when a script is enough.
///
/// Otherwise the rule passes (`None`) and the next rule decides; [`detect`](Self::detect)
/// tells an unsure pass from a language that has no route, and the rule logs each pass at
/// debug level (`polyrelay::routing` target). The rule's label ([`RouteChoice::label`]) is
/// the language code or the script name.
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
/// **Cost.** The script stage is one pass over the prose (a few µs on 500 characters). The
/// language stage runs only when a language route is configured, no script rule matched,
/// and the message's script is one that some routed language is written in: a rule with
/// only `cmn`, `jpn` and `kor` never runs it on a Latin-script message. On Latin- and
/// Cyrillic-script text it is whatlang's method computed by our scorer over every language
/// of the script (see `docs/routing-quality/language.md` for measured figures: about 15 µs
/// on 500 characters of English in release). Other scripts go to whatlang.
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
pub struct LanguageRule {
    scripts: Vec<(Script, Arc<str>)>,
    languages: Vec<(Lang, Arc<str>)>,
    /// whatlang's scripts some routed language can be detected in.
    language_scripts: Vec<whatlang::Script>,
    min_confidence: f64,
    /// The candidates besides the routed languages (`None`: every language).
    candidates: Option<Vec<Lang>>,
    /// The candidates and the routed languages, by `Lang as usize` (all bits: every
    /// language).
    candidate_bits: u128,
    /// whatlang among the candidates and the routed languages, for the scripts our scorer
    /// does not cover (`None`: every language).
    detector: Option<whatlang::Detector>,
}

/// The languages a [`LanguageRule`] tells apart by default, besides those it routes: the
/// most common languages of support tickets. A language outside them (Dutch, Swedish,
/// Vietnamese…) takes a text from a candidate only with a score a few percent above it (see
/// [`LanguageRule`]), and passes when it has no route.
pub const DEFAULT_CANDIDATES: &[&str] = &[
    "eng", "fra", "deu", "spa", "ita", "por", "rus", "ukr", "cmn", "jpn", "kor", "ara", "heb",
    "hin", "ell", "tha",
];

impl Default for LanguageRule {
    fn default() -> Self {
        Self::new()
    }
}

/// The bit of `lang` in a [`LanguageRule::candidate_bits`].
fn bit(lang: Lang) -> u128 {
    1u128 << ((lang as usize) & 127)
}

impl LanguageRule {
    /// The default [`min_confidence`](Self::min_confidence): 0.5. whatlang gives 1.0 to most
    /// sentences of a clear language, 0.3–0.6 to short or near-neighbour sentences, and less
    /// than 0.3 to one to three words.
    pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.5;

    /// How many characters of prose the rule looks at, from the start of the message.
    pub const MAX_PROSE_CHARS: usize = 500;

    /// A rule with no routes (it passes on every message), the default candidates and the
    /// default threshold.
    pub fn new() -> Self {
        LanguageRule {
            scripts: Vec::new(),
            languages: Vec::new(),
            language_scripts: Vec::new(),
            min_confidence: Self::DEFAULT_MIN_CONFIDENCE,
            candidates: Some(
                DEFAULT_CANDIDATES
                    .iter()
                    .filter_map(|c| codes::resolve(c))
                    .collect(),
            ),
            candidate_bits: 0,
            detector: None,
        }
        .with_detector()
    }

    /// Rebuilds the candidate set for the candidates and the routed languages.
    fn with_detector(mut self) -> Self {
        match &self.candidates {
            None => {
                self.candidate_bits = u128::MAX;
                self.detector = None;
            }
            Some(list) => {
                let mut all = list.clone();
                for (lang, _) in &self.languages {
                    if !all.contains(lang) {
                        all.push(*lang);
                    }
                }
                self.candidate_bits = all.iter().fold(0, |b, &l| b | bit(l));
                self.detector = Some(whatlang::Detector::with_allowlist(all));
            }
        }
        self
    }

    /// The languages the rule tells apart besides the routed ones, each as an ISO 639-1 or
    /// ISO 639-3 code or an English name (`de`, `deu`, `German`; any case). Default
    /// [`DEFAULT_CANDIDATES`]. A language outside the candidates takes a text from them only
    /// when it scores a few percent above the best of them (see the type's docs); either way
    /// a language without a route passes.
    ///
    /// # Errors
    /// A [`Config`](crate::ErrorKind::Config) error naming the first name that is not a
    /// language the rule detects.
    pub fn candidates(
        mut self,
        names: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, Error> {
        let mut list = Vec::new();
        for name in names {
            let name = name.as_ref();
            list.push(codes::resolve(name).ok_or_else(|| codes::unknown(name))?);
        }
        self.candidates = Some(list);
        Ok(self.with_detector())
    }

    /// Every language whatlang knows (70) is a candidate: no language needs a margin to win.
    /// On sentences of the default candidates' languages this costs accuracy (close
    /// neighbours win more often); see `docs/routing-quality/language.md`.
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

    /// Sends messages in the language `name` to `route` when the rule is sure of it (see the
    /// type's docs). `name` is an ISO 639-1 code (`zh`, `de`), an ISO 639-3 code (`cmn`,
    /// `deu`; `zho` is Chinese too) or an English name (`Chinese`, `German`), any case,
    /// surrounding spaces ignored. Naming a language again replaces its route.
    ///
    /// # Errors
    /// A [`Config`](crate::ErrorKind::Config) error naming `name` when it is not a language
    /// the rule detects (whatlang's 70).
    pub fn language(
        mut self,
        name: impl AsRef<str>,
        route: impl Into<Arc<str>>,
    ) -> Result<Self, Error> {
        let name = name.as_ref();
        let lang = codes::resolve(name).ok_or_else(|| codes::unknown(name))?;
        let route = route.into();
        for &s in whatlang::Script::all() {
            if s.langs().contains(&lang) && !self.language_scripts.contains(&s) {
                self.language_scripts.push(s);
            }
        }
        match self.languages.iter_mut().find(|(l, _)| *l == lang) {
            Some(entry) => entry.1 = route,
            None => self.languages.push((lang, route)),
        }
        Ok(self.with_detector())
    }

    /// The confidence a language needs, 0.0–1.0 (clamped; NaN is ignored). Default
    /// [`DEFAULT_MIN_CONFIDENCE`](Self::DEFAULT_MIN_CONFIDENCE). Script rules do not use it.
    pub fn min_confidence(mut self, min: f64) -> Self {
        if !min.is_nan() {
            self.min_confidence = min.clamp(0.0, 1.0);
        }
        self
    }

    /// The rule's answer for `text`: the script and language it sees, its confidence, and
    /// its [`Verdict`]: a route, no route for that language or script, or unsure. The same
    /// decision as [`choose`](Self::choose), with the language stage always run when the
    /// script has languages to tell apart (so a rule without language routes still names
    /// the language).
    ///
    /// ```
    /// use polyrelay::routing::{LanguageRule, Verdict};
    /// let rule = LanguageRule::new().language("de", "german")?;
    /// let d = rule.detect("Mijn pakket is beschadigd aangekomen, kunnen jullie mij helpen?");
    /// assert_eq!((d.language, d.verdict), (Some("nld"), Verdict::NoRoute));
    /// let d = rule.detect("Meine Bestellung ist seit zwei Wochen nicht angekommen.");
    /// assert_eq!(d.verdict, Verdict::Route("german".into()));
    /// assert_eq!(rule.detect("ok").verdict, Verdict::Unsure);
    /// # Ok::<(), polyrelay::Error>(())
    /// ```
    pub fn detect(&self, text: &str) -> LanguageDetection {
        self.judge(text, true)
    }

    /// The rule's decision for `text` (the router calls it on the last user message): a
    /// script rule, else a language rule the rule is sure of, else `None` (logged at debug
    /// level with what the rule saw).
    pub fn choose(&self, text: &str) -> Option<RouteChoice> {
        if self.scripts.is_empty() && self.languages.is_empty() {
            return None;
        }
        let d = self.judge(text, false);
        match &d.verdict {
            Verdict::Route(route) => {
                let label = d
                    .language
                    .unwrap_or_else(|| d.script.map_or("", Script::name));
                Some(RouteChoice::new(route.clone(), d.to_string()).with_label(label))
            }
            verdict => {
                tracing::debug!(
                    unsure = *verdict == Verdict::Unsure,
                    script = d.script.map(Script::name),
                    language = d.language,
                    confidence = d.confidence,
                    letters = d.letters,
                    "language rule passes: {d}"
                );
                None
            }
        }
    }

    /// The decision; with `full` false, the language stage is skipped when no routed
    /// language is written in the text's script (the rule passes either way).
    fn judge(&self, text: &str, full: bool) -> LanguageDetection {
        let Prose {
            text: prose,
            counts,
            ..
        } = prose(text);
        let dominant = counts.dominant();
        let mut d = LanguageDetection {
            letters: counts.letters,
            script: dominant.map(|x| x.script),
            script_share: dominant.map_or(0.0, |x| x.share),
            sentence: dominant.and_then(|x| x.sentence),
            language: None,
            confidence: 0.0,
            verdict: Verdict::Unsure,
        };
        if counts.letters == 0 {
            return d;
        }
        if let Some(Dominant { script, .. }) = dominant
            && let Some((_, route)) = self.scripts.iter().find(|(s, _)| *s == script)
        {
            d.confidence = 1.0;
            d.verdict = Verdict::Route(route.clone());
            return d;
        }
        let no_route = if dominant.is_some() {
            Verdict::NoRoute
        } else {
            Verdict::Unsure
        };
        let found = match dominant.map(|x| x.script) {
            Some(Script::Han) => Some(Found::new(Lang::Cmn, han_confidence(&counts))),
            Some(Script::Kana) => Some(Found::new(Lang::Jpn, 1.0)),
            Some(Script::Hangul) => Some(Found::new(Lang::Kor, 1.0)),
            _ => {
                let Some(main) = main_script(&prose, &counts) else {
                    d.verdict = no_route;
                    return d;
                };
                if !full && !self.language_scripts.contains(&main) {
                    d.verdict = no_route;
                    return d;
                }
                self.detect_prose(&prose, main)
            }
        };
        let Some(found) = found else {
            d.verdict = no_route;
            return d;
        };
        d.language = Some(found.lang.code());
        d.confidence = found.confidence;
        d.verdict = if found.confidence < self.min_confidence {
            Verdict::Unsure
        } else {
            match self.languages.iter().find(|(l, _)| *l == found.lang) {
                Some((_, route)) => Verdict::Route(route.clone()),
                None => Verdict::NoRoute,
            }
        };
        d
    }

    fn is_candidate(&self, lang: Lang) -> bool {
        self.candidate_bits & bit(lang) != 0
    }

    /// The language of `prose`, whose main script is `main`. Latin and Cyrillic text goes to
    /// the fast scorer, other text to whatlang.
    fn detect_prose(&self, prose: &str, main: whatlang::Script) -> Option<Found> {
        let script = match main {
            whatlang::Script::Latin => Some(ModelScript::Latin),
            whatlang::Script::Cyrillic => Some(ModelScript::Cyrillic),
            _ => None,
        };
        if let Some(script) = script
            && let Some(model) = scorer::model(script)
        {
            let margin = match script {
                ModelScript::Latin => OUTSIDER_MARGIN_LATIN,
                ModelScript::Cyrillic => OUTSIDER_MARGIN_CYRILLIC,
            };
            return self.pick(&model.scores(prose, model.everything())?, margin);
        }
        // whatlang among every language, and among the candidates: a language outside them
        // takes the text only when whatlang is sure of it.
        let all = whatlang::detect(prose)?;
        let Some(detector) = &self.detector else {
            return Some(Found::new(all.lang(), all.confidence()));
        };
        if !self.is_candidate(all.lang()) && all.confidence() >= self.min_confidence {
            return Some(Found::new(all.lang(), all.confidence()));
        }
        let info = detector.detect(prose)?;
        Some(Found::new(info.lang(), info.confidence()))
    }

    /// The best candidate of a text's scores, unless a language outside the candidates
    /// scores more than `margin` (a share of the candidate's score) above it.
    fn pick(&self, scores: &scorer::Scores, margin: f64) -> Option<Found> {
        // The best and second-best candidates and the best other language (ties to the
        // first in the script's order: a tie has no confidence anyway).
        let mut best: Option<(Lang, f64)> = None;
        let mut second: Option<f64> = None;
        let mut outsider: Option<(Lang, f64)> = None;
        let mut runner_up = 0.0f64; // the second-best score of all, for an outsider alone
        for (lang, score) in scores.iter() {
            if self.is_candidate(lang) {
                match best {
                    Some((_, b)) if score <= b => {
                        second = Some(second.map_or(score, |s| s.max(score)));
                    }
                    _ => {
                        second = best.map(|(_, b)| b).or(second);
                        best = Some((lang, score));
                    }
                }
            } else {
                match outsider {
                    Some((_, o)) if score <= o => runner_up = runner_up.max(score),
                    _ => {
                        runner_up = runner_up.max(outsider.map_or(0.0, |(_, o)| o));
                        outsider = Some((lang, score));
                    }
                }
            }
        }
        let confidence = |first, second| scorer::confidence(first, second, scores.trigrams);
        let Some((lang, score)) = best else {
            // No candidate in this script: the best of the others.
            let (lang, score) = outsider?;
            return Some(Found::new(lang, confidence(score, runner_up)));
        };
        if let Some((other, other_score)) = outsider
            && other_score > score * (1.0 + margin)
        {
            return Some(Found::new(other, confidence(other_score, score)));
        }
        Some(Found::new(
            lang,
            second.map_or(1.0, |s| confidence(score, s)),
        ))
    }
}

/// A language the language stage settles on, and the confidence in it.
struct Found {
    lang: Lang,
    confidence: f64,
}

impl Found {
    fn new(lang: Lang, confidence: f64) -> Found {
        Found { lang, confidence }
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

/// How far (as a share of the best candidate's score) a language that is neither routed nor
/// a candidate must score above the best candidate to take a Latin-script text from it.
/// Closer calls go to the candidate, so near neighbours of a routed language (Catalan beside
/// Spanish) cost it little; a Dutch sentence scores far above German. Tuned on the
/// development split of `bench/language-data`.
const OUTSIDER_MARGIN_LATIN: f64 = 0.02;

/// The same for Cyrillic text, whose languages whatlang scores closer together (Russian
/// beside Bulgarian, Serbian, Macedonian, Belarusian).
const OUTSIDER_MARGIN_CYRILLIC: f64 = 0.03;

/// Below this many Han characters (and no kana), a Chinese detection is scaled down.
const HAN_ONLY_FULL_CONFIDENCE: usize = 10;

/// The confidence that a Han text is Chinese: 1.0, scaled down below
/// [`HAN_ONLY_FULL_CONFIDENCE`] characters.
fn han_confidence(counts: &ScriptCounts) -> f64 {
    let han = counts.get(Script::Han);
    (han.min(HAN_ONLY_FULL_CONFIDENCE) as f64) / HAN_ONLY_FULL_CONFIDENCE as f64
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

#[cfg(test)]
mod tests;
