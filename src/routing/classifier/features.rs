//! Features: hashed words, word bigrams and character n-grams of a text (described on
//! [`TextClassifier`](super::TextClassifier)).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Seeds that keep the feature families apart.
const NS_WORD: u64 = 0x5157_4f52_4420_0001;
const NS_BIGRAM: u64 = 0x5142_4947_5241_0002;
const NS_CHARS: u64 = 0x5143_4841_5253_0003;
/// The word-boundary mark in character n-grams.
const BOUNDARY: char = '\u{1}';

/// The murmur3 64-bit finaliser: spreads FNV's weak low bits.
pub(super) fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash_chars(seed: u64, chars: &[char]) -> u64 {
    let mut h = FNV_OFFSET ^ seed;
    for &c in chars {
        h ^= u64::from(u32::from(c));
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix(h)
}

/// Scripts written without spaces between words.
fn is_unsegmented(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF     // Thai, Lao
        | 0x1000..=0x109F   // Myanmar
        | 0x1100..=0x11FF   // Hangul Jamo
        | 0x1780..=0x17FF   // Khmer
        | 0x3005..=0x3007   // 々 〆 〇
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3130..=0x318F   // Hangul compatibility Jamo
        | 0x31F0..=0x31FF   // Katakana extensions
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF66..=0xFF9F   // half-width Katakana
        | 0x20000..=0x3FFFF // CJK extensions B…
    )
}

/// A lower-cased character, folded: `None` drops it (a combining mark).
fn fold(c: char) -> Option<char> {
    let c = match c {
        // Full-width ASCII.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{0300}'..='\u{036F}' => return None,
        _ => c,
    };
    if c.is_numeric() {
        return Some('0');
    }
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => 'e',
        'ğ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ş' => 's',
        'ť' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    })
}

/// Reusable buffers for feature extraction.
#[derive(Default)]
pub(super) struct Scratch {
    /// The current word, between boundary marks.
    pub(super) word: Vec<char>,
    /// Feature hashes of the text, sorted after extraction.
    pub(super) hashes: Vec<u64>,
}

/// Which n-gram families the extractor emits (set by [`TrainOptions`](super::TrainOptions),
/// kept in a saved model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FeatureSpec {
    pub(super) word_bigrams: bool,
    /// Character n-gram lengths in space-separated scripts.
    pub(super) chars: (usize, usize),
    /// Character n-gram lengths in scripts written without spaces.
    pub(super) unsegmented_chars: (usize, usize),
}

/// The longest character n-gram a model may use.
pub(super) const MAX_NGRAM: usize = 8;

impl Default for FeatureSpec {
    fn default() -> Self {
        FeatureSpec {
            word_bigrams: true,
            chars: (3, 5),
            unsegmented_chars: (1, 3),
        }
    }
}

impl FeatureSpec {
    /// Fills `s.hashes` with the features of `text`, sorted (repeats kept: they are the term
    /// frequencies).
    pub(super) fn extract(&self, text: &str, s: &mut Scratch) {
        s.hashes.clear();
        s.word.clear();
        s.word.push(BOUNDARY);
        let mut prev: Option<u64> = None;
        let mut unsegmented = false;
        for c in text.chars() {
            for lc in c.to_lowercase() {
                let Some(f) = fold(lc) else { continue };
                if f.is_alphanumeric() {
                    let u = is_unsegmented(f);
                    if s.word.len() > 1 && u != unsegmented {
                        self.flush(s, unsegmented, &mut prev);
                    }
                    unsegmented = u;
                    s.word.push(f);
                } else if s.word.len() > 1 {
                    self.flush(s, unsegmented, &mut prev);
                }
            }
        }
        if s.word.len() > 1 {
            self.flush(s, unsegmented, &mut prev);
        }
        s.hashes.sort_unstable();
    }

    /// Emits the features of the word in `s.word` and starts a new one.
    fn flush(&self, s: &mut Scratch, unsegmented: bool, prev: &mut Option<u64>) {
        s.word.push(BOUNDARY);
        let inner = &s.word[1..s.word.len() - 1];
        let w = hash_chars(NS_WORD, inner);
        s.hashes.push(w);
        if self.word_bigrams
            && let Some(p) = *prev
        {
            s.hashes.push(fmix(
                p.wrapping_mul(FNV_PRIME) ^ w.rotate_left(31) ^ NS_BIGRAM,
            ));
        }
        *prev = Some(w);
        let (grams, (lo, hi)) = if unsegmented {
            (inner, self.unsegmented_chars)
        } else {
            (&s.word[..], self.chars)
        };
        for n in lo..=hi {
            if n == 0 || n > grams.len() {
                break;
            }
            for g in grams.windows(n) {
                s.hashes.push(hash_chars(NS_CHARS ^ n as u64, g));
            }
        }
        s.word.clear();
        s.word.push(BOUNDARY);
    }
}

/// A hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Default)]
pub(super) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) type FeatureMap<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

/// Runs of equal hashes in a sorted slice: (hash, count).
pub(super) fn runs(sorted: &[u64]) -> impl Iterator<Item = (u64, u32)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let h = *sorted.get(i)?;
        let start = i;
        while sorted.get(i) == Some(&h) {
            i += 1;
        }
        Some((h, (i - start) as u32))
    })
}
