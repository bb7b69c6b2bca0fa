//! whatlang's combined method (alphabet and trigram scores) for Latin- and Cyrillic-script
//! text, with whatlang's own models, computed in a fraction of its time.
//!
//! whatlang scores every candidate language by walking that language's 300-trigram profile
//! through a hash map of the text's trigrams, and ranks the text's trigrams by sorting
//! tuples of `char`s: about 290 000 instructions (40 µs) for a 500-character message among
//! six Latin-script candidates. Here the profiles of all languages of a script are one
//! inverted index (trigram → the languages that rank it, and where), walked once per text
//! trigram, and trigrams are packed into integers for counting and ranking. The arithmetic
//! — distances, the alphabet score, their weighting and the confidence — is whatlang's, on
//! whatlang's models (extracted by `tools/whatlang-models/extract.sh`, MIT), and the unit
//! tests check that the answers are whatlang's.

use std::sync::LazyLock;

use hashbrown::HashMap;
use whatlang::{Lang, Script as WScript};

/// whatlang's models, as `tools/whatlang-models/extract.sh` writes them.
const MODELS: &str = include_str!("whatlang_models.txt");

/// A profile trigram the text lacks costs this much; a text trigram's distance is its rank's
/// difference (whatlang's `MAX_TRIGRAM_DISTANCE`).
const MAX_TRIGRAM_DISTANCE: i64 = 300;
/// The text trigrams ranked (whatlang's `TEXT_TRIGRAMS_SIZE`).
const TEXT_TRIGRAMS_SIZE: usize = 600;
/// whatlang's `MAX_TOTAL_DISTANCE`.
const MAX_TOTAL_DISTANCE: i64 = MAX_TRIGRAM_DISTANCE * MAX_TRIGRAM_DISTANCE;

/// The two scripts whose languages whatlang tells apart by alphabet and trigrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ModelScript {
    Latin,
    Cyrillic,
}

impl ModelScript {
    fn whatlang(self) -> &'static WScript {
        static LATIN: WScript = WScript::Latin;
        static CYRILLIC: WScript = WScript::Cyrillic;
        match self {
            ModelScript::Latin => &LATIN,
            ModelScript::Cyrillic => &CYRILLIC,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ModelScript::Latin => "latin",
            ModelScript::Cyrillic => "cyrillic",
        }
    }
}

/// One script's models: its languages in whatlang's order (`Script::langs`, which decides
/// ties as whatlang does), their alphabets as bit masks per character, and their trigram
/// profiles as one inverted index.
pub(super) struct ScriptModel {
    langs: &'static [Lang],
    /// Which languages' alphabets hold each ASCII character.
    ascii: [u64; 128],
    /// The same for the other characters of any alphabet, sorted by character.
    other: Vec<(char, u64)>,
    /// Every language of the script.
    everything: Selection,
    /// Every profile's trigrams, for [`select`](Self::select).
    #[cfg_attr(not(test), allow(dead_code))]
    by_trigram: HashMap<u64, Vec<(u8, u16)>>,
}

/// Some languages of a script, with the trigram index of their profiles alone (a smaller
/// index walks fewer entries per text trigram).
#[derive(Clone, Debug, Default)]
pub(super) struct Selection {
    /// Bit `i`: the script's language `i`.
    mask: u64,
    /// Trigram → its range in `ranks`.
    index: HashMap<u64, (u32, u32)>,
    /// (language index, rank in its profile), grouped by trigram.
    ranks: Vec<(u8, u16)>,
}

impl Selection {
    fn new(mask: u64, by_trigram: &HashMap<u64, Vec<(u8, u16)>>) -> Selection {
        let mut out = Selection {
            mask,
            ..Selection::default()
        };
        for (&trigram, entries) in by_trigram {
            let start = out.ranks.len() as u32;
            out.ranks
                .extend(entries.iter().filter(|&&(l, _)| mask & (1 << l) != 0));
            if out.ranks.len() as u32 > start {
                out.index.insert(trigram, (start, out.ranks.len() as u32));
            }
        }
        out
    }
}

/// Both scripts' models, parsed on first use; `None` if the data file does not parse (a
/// unit test makes sure it does), in which case callers use whatlang itself.
static MODELS_BY_SCRIPT: LazyLock<Option<[ScriptModel; 2]>> = LazyLock::new(|| {
    Some([
        ScriptModel::parse(ModelScript::Latin)?,
        ScriptModel::parse(ModelScript::Cyrillic)?,
    ])
});

/// The models of `script`, if they parsed.
pub(super) fn model(script: ModelScript) -> Option<&'static ScriptModel> {
    let models = MODELS_BY_SCRIPT.as_ref()?;
    Some(match script {
        ModelScript::Latin => &models[0],
        ModelScript::Cyrillic => &models[1],
    })
}

/// A trigram as one integer (21 bits per `char`), ordered as whatlang's `(char, char, char)`.
fn pack(a: char, b: char, c: char) -> u64 {
    ((a as u64) << 42) | ((b as u64) << 21) | c as u64
}

/// whatlang's `is_stop_char`: ASCII punctuation, digits and control characters.
fn is_stop_char(c: char) -> bool {
    matches!(c, '\u{0000}'..='\u{0040}' | '\u{005B}'..='\u{0060}' | '\u{007B}'..='\u{007E}')
}

impl ScriptModel {
    fn parse(script: ModelScript) -> Option<ScriptModel> {
        let langs = script.whatlang().langs();
        if langs.len() >= 64 {
            return None;
        }
        let mut model = ScriptModel {
            langs,
            ascii: [0; 128],
            other: Vec::new(),
            everything: Selection::default(),
            by_trigram: HashMap::new(),
        };
        let (mut with_alphabet, mut with_profile) = (0u64, 0u64);
        let mut other: HashMap<char, u64> = HashMap::new();
        let mut by_trigram: HashMap<u64, Vec<(u8, u16)>> = HashMap::new();
        for line in MODELS.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.splitn(4, ' ');
            let (Some(s), Some(kind), Some(code), Some(data)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            if s != script.name() {
                continue;
            }
            let lang = Lang::from_code(code)?;
            let i = langs.iter().position(|&l| l == lang)?;
            let bit = 1u64 << i;
            match kind {
                "alphabet" => {
                    with_alphabet |= bit;
                    for c in data.chars() {
                        match usize::try_from(c as u32) {
                            Ok(a) if a < 128 => model.ascii[a] |= bit,
                            _ => *other.entry(c).or_default() |= bit,
                        }
                    }
                }
                "profile" => {
                    with_profile |= bit;
                    let chars: Vec<char> = data.chars().collect();
                    if chars.len() != 3 * MAX_TRIGRAM_DISTANCE as usize {
                        return None;
                    }
                    for (rank, t) in chars.chunks_exact(3).enumerate() {
                        by_trigram
                            .entry(pack(t[0], t[1], t[2]))
                            .or_default()
                            .push((i as u8, rank as u16));
                    }
                }
                _ => return None,
            }
        }
        // Every language has both models (whatlang's do): the scores below rely on it, and
        // anything else falls back to whatlang itself.
        let all = (1u64 << langs.len()) - 1;
        if with_alphabet != all || with_profile != all {
            return None;
        }
        model.other = other.into_iter().collect();
        model.other.sort_unstable_by_key(|&(c, _)| c);
        model.everything = Selection::new(all, &by_trigram);
        model.by_trigram = by_trigram;
        Some(model)
    }

    /// The script's languages among `langs`, to detect among (the rule scores every
    /// language; the tests compare with whatlang's allowlists).
    #[cfg(test)]
    pub(super) fn select(&self, langs: impl IntoIterator<Item = Lang>) -> Selection {
        let mask = langs
            .into_iter()
            .filter_map(|l| self.langs.iter().position(|&x| x == l))
            .fold(0, |m, i| m | 1 << i);
        Selection::new(mask, &self.by_trigram)
    }

    /// Every language of the script.
    pub(super) fn everything(&self) -> &Selection {
        &self.everything
    }

    fn alphabets_of(&self, c: char) -> u64 {
        match usize::try_from(c as u32) {
            Ok(a) if a < 128 => self.ascii[a],
            _ => self
                .other
                .binary_search_by_key(&c, |&(x, _)| x)
                .map_or(0, |i| self.other[i].1),
        }
    }

    /// whatlang's combined detection of `text` among the `selected` languages: the language
    /// and whatlang's confidence, or `None` if none is selected or `text` has no letter.
    #[cfg(test)]
    pub(super) fn detect(&self, text: &str, selected: &Selection) -> Option<(Lang, f64)> {
        let scores = self.scores(text, selected)?;
        let ranked = scores.ranked();
        let &(lang, first) = ranked.first()?;
        let confidence = match ranked.get(1) {
            Some(&(_, second)) => confidence(first, second, scores.trigrams),
            None => 1.0,
        };
        Some((lang, confidence))
    }

    /// whatlang's combined scores (0.0–1.0) of `text` for each of the `selected` languages,
    /// or `None` if none is selected or `text` has no letter.
    pub(super) fn scores(&self, text: &str, selected: &Selection) -> Option<Scores> {
        let allowed = selected.mask & self.everything.mask;
        if allowed == 0 {
            return None;
        }
        // Lower-cased, stop characters as spaces, as whatlang sees the text.
        let mut chars: Vec<char> = Vec::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                let c = c.to_ascii_lowercase();
                chars.push(if is_stop_char(c) { ' ' } else { c });
            } else {
                chars.extend(
                    c.to_lowercase()
                        .map(|c| if is_stop_char(c) { ' ' } else { c }),
                );
            }
        }

        // Alphabets: +1 per letter in a language's alphabet, -1 per letter outside it.
        let mut ascii_counts = [0u32; 128];
        let mut hits = [0u64; 64];
        let mut letters = 0u64;
        for &c in &chars {
            if c == ' ' || is_stop_char(c) {
                continue;
            }
            letters += 1;
            match usize::try_from(c as u32) {
                Ok(a) if a < 128 => ascii_counts[a] += 1,
                _ => add_bits(&mut hits, self.alphabets_of(c) & allowed, 1),
            }
        }
        if letters == 0 {
            return None;
        }
        // ASCII letters: all of them are in most alphabets, so count those each language
        // lacks (a few per language) rather than those it has.
        let mut ascii_letters = 0u64;
        let mut missing = [0u64; 64];
        for (a, &n) in ascii_counts.iter().enumerate() {
            if n > 0 {
                ascii_letters += u64::from(n);
                add_bits(&mut missing, !self.ascii[a] & allowed, u64::from(n));
            }
        }
        let mut alphabet = [0u64; 64];
        for_bits(allowed, |i| {
            let hits = hits[i] + ascii_letters - missing[i];
            alphabet[i] = (2 * hits).saturating_sub(letters);
        });

        // Trigrams, ranked by count then by trigram, both descending (whatlang's order):
        // the distinct trigrams in descending order, then a stable counting sort by count.
        let unique = distinct_trigrams(&chars);
        let most = unique.iter().map(|&(_, n)| n).max().unwrap_or(0);
        // starts[n]: where the trigrams seen n times begin in the ranking.
        let mut starts = vec![0u32; most as usize + 2];
        for &(_, n) in &unique {
            starts[n as usize] += 1;
        }
        let mut next = 0;
        for n in (1..starts.len()).rev() {
            let here = starts[n];
            starts[n] = next;
            next += here;
        }
        let mut ranked = vec![0u64; unique.len()];
        for &(trigram, n) in &unique {
            let slot = &mut starts[n as usize];
            ranked[*slot as usize] = trigram;
            *slot += 1;
        }
        ranked.truncate(TEXT_TRIGRAMS_SIZE);
        let count = ranked.len() as i64;
        if count == 0 {
            return None;
        }
        let mut distance = [MAX_TOTAL_DISTANCE; 64];
        for (position, trigram) in ranked.iter().enumerate() {
            let Some(&(start, end)) = selected.index.get(trigram) else {
                continue;
            };
            for &(lang, rank) in selected
                .ranks
                .get(start as usize..end as usize)
                .unwrap_or(&[])
            {
                let d = (position as i64 - i64::from(rank)).abs();
                distance[usize::from(lang)] += d - MAX_TRIGRAM_DISTANCE;
            }
        }
        let adjust = (MAX_TRIGRAM_DISTANCE - count).max(0) * MAX_TRIGRAM_DISTANCE;
        let max_distance = count * MAX_TRIGRAM_DISTANCE;
        let trigram_score = |i: usize| {
            let d = (distance[i] - adjust).clamp(0, MAX_TOTAL_DISTANCE);
            (max_distance - d).max(0) as f64 / max_distance as f64
        };

        // Combined, weighted by the number of letters as whatlang weighs them.
        let alphabet_weight = (2.0 / 3.0 - letters as f64 / 300.0).clamp(1.0 / 3.0, 2.0 / 3.0);
        let mut combined = [0.0f64; 64];
        for_bits(allowed, |i| {
            let a = alphabet[i] as f64 / letters as f64;
            combined[i] = a * alphabet_weight + trigram_score(i) * (1.0 - alphabet_weight);
        });
        Some(Scores {
            langs: self.langs,
            allowed,
            alphabet,
            combined,
            trigrams: count as usize,
        })
    }
}

/// A text's scores ([`ScriptModel::scores`]).
#[derive(Clone, Debug)]
pub(super) struct Scores {
    /// The script's languages.
    langs: &'static [Lang],
    /// The selected ones (bit `i`: `langs[i]`).
    allowed: u64,
    /// whatlang's raw alphabet score, by language index (for its order of ties).
    #[cfg_attr(not(test), allow(dead_code))]
    alphabet: [u64; 64],
    /// The combined score (0.0–1.0), by language index.
    combined: [f64; 64],
    /// How many distinct trigrams of the text were ranked (at most 600).
    pub(super) trigrams: usize,
}

impl Scores {
    /// The selected languages and their combined scores, in the script's order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Lang, f64)> + '_ {
        self.langs
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.allowed & (1 << i) != 0)
            .map(|(i, &lang)| (lang, self.combined[i]))
    }

    /// The selected languages and their combined scores, best first, ties in whatlang's
    /// order (its unstable sorts: by alphabet score, then by combined score).
    #[cfg(test)]
    pub(super) fn ranked(&self) -> Vec<(Lang, f64)> {
        let mut alphabet: Vec<(usize, u64)> = (0..self.langs.len())
            .filter(|&i| self.allowed & (1 << i) != 0)
            .map(|i| (i, self.alphabet[i]))
            .collect();
        alphabet.sort_unstable_by_key(|&(_, s)| std::cmp::Reverse(s));
        let mut scores: Vec<(usize, f64)> = alphabet
            .iter()
            .map(|&(i, _)| (i, self.combined[i]))
            .collect();
        scores.sort_unstable_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Less));
        scores
            .iter()
            .map(|&(i, score)| (self.langs[i], score))
            .collect()
    }
}

/// The distinct trigrams of `chars` (lower-cased, stop characters as spaces) in descending
/// order, with their counts, as whatlang counts them: a space before and after the text,
/// no trigram centred on a space next to another.
fn distinct_trigrams(chars: &[char]) -> Vec<(u64, u32)> {
    let mut trigrams = windows(chars, pack);
    // Packed into integers, trigrams sort several times faster than whatlang's tuples of
    // `char`s (its largest cost).
    trigrams.sort_unstable();
    runs_descending(&trigrams, |t| t)
}

/// The trigrams of `chars` as whatlang takes them (a space before and after the text, none
/// centred on a space next to another), packed by `pack`.
fn windows<T>(chars: &[char], pack: impl Fn(char, char, char) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(chars.len() + 1);
    let (mut c1, mut c2) = (' ', chars.first().copied().unwrap_or(' '));
    for &c3 in chars.get(1..).unwrap_or(&[]).iter().chain(&[' ']) {
        if !(c2 == ' ' && (c1 == ' ' || c3 == ' ')) {
            out.push(pack(c1, c2, c3));
        }
        (c1, c2) = (c2, c3);
    }
    out
}

/// The distinct values of `sorted`, in descending order, with their counts.
fn runs_descending<T: PartialEq + Copy>(
    sorted: &[T],
    unpack: impl Fn(T) -> u64,
) -> Vec<(u64, u32)> {
    let mut out = Vec::with_capacity(sorted.len());
    out.extend(
        sorted
            .chunk_by(|a, b| a == b)
            .rev()
            .map(|run| (unpack(run[0]), run.len() as u32)),
    );
    out
}

/// Calls `f` with every bit `i` of `mask`, lowest first.
fn for_bits(mut mask: u64, mut f: impl FnMut(usize)) {
    while mask != 0 {
        f(mask.trailing_zeros() as usize);
        mask &= mask - 1;
    }
}

/// Adds `n` to `hits[i]` for every bit `i` of `mask`.
fn add_bits(hits: &mut [u64; 64], mut mask: u64, n: u64) {
    while mask != 0 {
        let i = mask.trailing_zeros() as usize;
        hits[i] += n;
        mask &= mask - 1;
    }
}

/// whatlang's `calculate_confidence`: how far the best score stands above the second,
/// relative to what the text's length makes certain (`count`: the text's distinct
/// trigrams).
pub(super) fn confidence(highest: f64, second: f64, count: usize) -> f64 {
    if highest == 0.0 {
        return 0.0;
    }
    if second == 0.0 {
        return highest;
    }
    let confident_rate = (3.0 / count as f64) + 0.015;
    let rate = (highest - second) / second;
    if rate > confident_rate {
        1.0
    } else {
        rate / confident_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse() {
        let latin = model(ModelScript::Latin).expect("latin models");
        let cyrillic = model(ModelScript::Cyrillic).expect("cyrillic models");
        assert_eq!(
            latin.everything().mask.count_ones() as usize,
            WScript::Latin.langs().len()
        );
        assert_eq!(
            cyrillic.everything().mask.count_ones() as usize,
            WScript::Cyrillic.langs().len()
        );
        assert!(latin.langs.len() >= 30);
        assert!(cyrillic.langs.len() >= 5);
    }

    /// Texts in many languages and lengths: the support tickets, their prefixes, pairs of
    /// them run together, and a few edge cases.
    fn texts() -> Vec<String> {
        let data = include_str!("../../tests/data/support_tickets.jsonl");
        let tickets: Vec<String> = data
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_owned))
            .collect();
        let mut out = tickets.clone();
        for (i, t) in tickets.iter().enumerate() {
            let chars: Vec<char> = t.chars().collect();
            for n in [1, 2, 5, 12, 30] {
                out.push(chars.iter().take(n).collect());
            }
            let next = &tickets[(i * 7 + 3) % tickets.len()];
            out.push(format!("{t} {next}"));
            out.push(format!("{t} {t} {t} {t} {t} {t} {t} {t}"));
        }
        out.extend(
            [
                "",
                " ",
                "1234",
                "a",
                "ab",
                "ok",
                "?!",
                "İstanbul'da ŞİŞLİ",
                "ǅemal Ǉubljana",
                "Straße ẞ groß",
                "ÀÉÎÕÜ àéîõü",
                "x".repeat(2000).as_str(),
                "Ещё раз: ёлка",
                "Привет, how are you?",
                "Добрий день! Ґанок і їжак",
            ]
            .map(str::to_owned),
        );
        // Many distinct characters.
        let wide: String = (0xC0u32..0x250).filter_map(char::from_u32).collect();
        out.push(format!("{wide} the order has not arrived {wide}"));
        out
    }

    fn check(langs: &[Lang]) {
        let detector = whatlang::Detector::with_allowlist(langs.to_vec());
        let selected = [ModelScript::Latin, ModelScript::Cyrillic]
            .map(|s| model(s).map(|m| m.select(langs.iter().copied())));
        let mut compared = 0;
        for text in texts() {
            let script = match whatlang::detect_script(&text) {
                Some(WScript::Latin) => ModelScript::Latin,
                Some(WScript::Cyrillic) => ModelScript::Cyrillic,
                _ => continue,
            };
            let Some(m) = model(script) else {
                panic!("no models for {script:?}")
            };
            let Some(selection) = &selected[script as usize] else {
                panic!("no selection for {script:?}")
            };
            let ours = m.detect(&text, selection);
            let theirs = detector.detect(&text).map(|i| (i.lang(), i.confidence()));
            match (ours, theirs) {
                (Some((a, x)), Some((b, y))) => {
                    assert_eq!(a, b, "{text:?}");
                    assert!((x - y).abs() < 1e-9, "{text:?}: {x} vs {y}");
                }
                (None, None) => {}
                (a, b) => panic!("{text:?}: ours {a:?}, whatlang {b:?}"),
            }
            compared += 1;
        }
        assert!(compared > 2000, "{compared}");
    }

    #[test]
    fn answers_are_whatlangs_among_all_languages() {
        check(Lang::all());
    }

    #[test]
    fn answers_are_whatlangs_among_a_few() {
        let few: Vec<Lang> = [
            "eng", "fra", "deu", "spa", "ita", "por", "rus", "ukr", "cmn",
        ]
        .iter()
        .filter_map(|c| Lang::from_code(*c))
        .collect();
        check(&few);
        check(&[Lang::Eng]);
        check(&[Lang::Eng, Lang::Nld]);
        check(&[Lang::Rus, Lang::Bul]);
    }
}
