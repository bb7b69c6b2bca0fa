//! The prose of a message (code, URLs and code-like tokens set aside) and its letters
//! counted by script: what both stages of the language rule look at.

use super::super::script::SCRIPTS;
use super::{LanguageRule, Script};

/// How many letters of another script a Han, kana or Hangul character weighs when the
/// shares of scripts are compared: a CJK character carries about a word, not a letter
/// (English takes about three letters for what Chinese writes in one character).
const CJK_WEIGHT: usize = 3;

/// The share of the weighted letters CJK (Han and kana) or Hangul needs to decide the script.
const CJK_SHARE: f64 = 0.5;

/// A run of this many Han and kana (or Hangul) characters, not broken by a letter of another
/// script, is a sentence or a clause, not an incidental word: it decides the script whatever
/// the share of the rest. Names and product names (`王小明`, `微信支付`, `上海浦东机场`) are
/// shorter.
const SENTENCE_RUN: usize = 8;

/// A run of at least this many characters closed by a sentence mark (`。！？!?`) is a
/// sentence too (`我要退款！`).
const MARKED_SENTENCE_RUN: usize = 4;

/// The share of letters another script needs to decide.
const MAJORITY_SHARE: f64 = 0.5;

/// How much of a message is scanned for prose.
const MAX_SCAN_BYTES: usize = 64 * 1024;

/// Letters per script, and the longest runs of CJK and Hangul characters.
pub(super) struct ScriptCounts {
    by_script: [usize; SCRIPTS.len()],
    /// Letters of any script, unlisted ones included.
    pub(super) letters: usize,
    /// The Han and kana characters since the last letter of another script (spaces, digits
    /// and punctuation do not break a run).
    cjk_run: usize,
    /// The Hangul characters since the last letter of another script.
    hangul_run: usize,
    /// The longest CJK and Hangul runs so far, a run closed by a sentence mark counting as
    /// [`SENTENCE_RUN`] once it has [`MARKED_SENTENCE_RUN`] characters.
    longest_cjk: usize,
    longest_hangul: usize,
}

/// The script that decides, as [`ScriptCounts::dominant`] finds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Dominant {
    pub(super) script: Script,
    /// Its share of the letters (unweighted; for kana, kana and Han together).
    pub(super) share: f64,
    /// Set when a CJK or Hangul sentence decided rather than the share: its length in
    /// characters.
    pub(super) sentence: Option<usize>,
}

impl ScriptCounts {
    fn new() -> Self {
        ScriptCounts {
            by_script: [0; SCRIPTS.len()],
            letters: 0,
            cjk_run: 0,
            hangul_run: 0,
            longest_cjk: 0,
            longest_hangul: 0,
        }
    }

    fn add(&mut self, script: Option<Script>) {
        match script {
            Some(Script::Han | Script::Kana) => {
                self.cjk_run += 1;
                self.longest_cjk = self.longest_cjk.max(self.cjk_run);
                self.hangul_run = 0;
            }
            Some(Script::Hangul) => {
                self.hangul_run += 1;
                self.longest_hangul = self.longest_hangul.max(self.hangul_run);
                self.cjk_run = 0;
            }
            _ => self.break_runs(),
        }
        if let Some(s) = script {
            self.by_script[s as usize] += 1;
        }
        self.letters += 1;
    }

    /// `n` ASCII letters (at least one).
    fn add_latin(&mut self, n: usize) {
        self.by_script[Script::Latin as usize] += n;
        self.letters += n;
        self.break_runs();
    }

    fn break_runs(&mut self) {
        self.cjk_run = 0;
        self.hangul_run = 0;
    }

    /// A sentence mark: the run before it, if long enough, is a sentence.
    fn sentence_mark(&mut self) {
        if self.cjk_run >= MARKED_SENTENCE_RUN {
            self.longest_cjk = self.longest_cjk.max(SENTENCE_RUN);
        }
        if self.hangul_run >= MARKED_SENTENCE_RUN {
            self.longest_hangul = self.longest_hangul.max(SENTENCE_RUN);
        }
    }

    pub(super) fn get(&self, s: Script) -> usize {
        self.by_script[s as usize]
    }

    /// The one of `scripts` that has more letters than any other script, if any.
    pub(super) fn sole_leader(&self, scripts: &[Script]) -> Option<Script> {
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

    /// The deciding script (see [`LanguageRule`]): CJK or Hangul when it makes up at least
    /// [`CJK_SHARE`] of the letters, each of its characters weighing [`CJK_WEIGHT`]
    /// letters, or when it holds a sentence; else the script of at least half of the
    /// letters.
    pub(super) fn dominant(&self) -> Option<Dominant> {
        if self.letters == 0 {
            return None;
        }
        let total = self.letters as f64;
        let hangul = self.get(Script::Hangul);
        let kana = self.get(Script::Kana);
        let cjk = self.get(Script::Han) + kana;
        let others = self.letters - hangul - cjk;
        let weighted = (others + CJK_WEIGHT * (hangul + cjk)) as f64;
        let heavier = (CJK_WEIGHT * hangul.max(cjk)) as f64 >= CJK_SHARE * weighted;
        let sentence = self.longest_cjk.max(self.longest_hangul) >= SENTENCE_RUN;
        if heavier || sentence {
            let korean = if heavier {
                hangul > cjk
            } else {
                self.longest_hangul > self.longest_cjk
            };
            let (script, n, run) = if korean {
                (Script::Hangul, hangul, self.longest_hangul)
            } else if kana > 0 {
                (Script::Kana, cjk, self.longest_cjk)
            } else {
                (Script::Han, cjk, self.longest_cjk)
            };
            return Some(Dominant {
                script,
                share: n as f64 / total,
                sentence: (!heavier).then_some(run),
            });
        }
        let (i, &n) = self
            .by_script
            .iter()
            .enumerate()
            .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))?;
        let share = n as f64 / total;
        (n > 0 && share >= MAJORITY_SHARE).then(|| Dominant {
            script: SCRIPTS[i],
            share,
            sentence: None,
        })
    }
}

/// The prose of `text`: its whitespace-separated words outside Markdown code, minus
/// code-like ASCII tokens, joined by single spaces, at most
/// [`LanguageRule::MAX_PROSE_CHARS`] characters, normalised for the detectors
/// ([`Prose::push`]), with its letters counted by script.
pub(super) fn prose(text: &str) -> Prose {
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
pub(super) struct Prose {
    pub(super) text: String,
    chars: usize,
    pub(super) counts: ScriptCounts,
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
                if letters > 0 {
                    self.counts.add_latin(letters);
                } else if part.ends_with(['!', '?']) {
                    self.counts.sentence_mark();
                }
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
        if matches!(c, '。' | '！' | '？' | '!' | '?') {
            self.counts.sentence_mark();
        }
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
