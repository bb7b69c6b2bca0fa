//! Writing systems and the letter tables the language rule's script stage counts by.

/// A writing system, as the script stage of [`LanguageRule`](super::LanguageRule) tells them apart.
///
/// Hiragana and katakana are one script here, [`Kana`](Script::Kana): any kana in a text
/// whose CJK letters reach the threshold makes it Japanese.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(docsrs, doc(cfg(feature = "language")))]
#[non_exhaustive]
pub enum Script {
    /// Latin (English, French, Turkish, Vietnamese…), full-width Latin included.
    Latin,
    /// Cyrillic (Russian, Ukrainian, Bulgarian, Serbian…).
    Cyrillic,
    /// Greek.
    Greek,
    /// Armenian.
    Armenian,
    /// Georgian.
    Georgian,
    /// Hebrew (Hebrew, Yiddish).
    Hebrew,
    /// Arabic (Arabic, Persian, Urdu…).
    Arabic,
    /// Devanagari (Hindi, Marathi, Nepali…).
    Devanagari,
    /// Bengali.
    Bengali,
    /// Gurmukhi (Punjabi).
    Gurmukhi,
    /// Gujarati.
    Gujarati,
    /// Oriya (Odia).
    Oriya,
    /// Tamil.
    Tamil,
    /// Telugu.
    Telugu,
    /// Kannada.
    Kannada,
    /// Malayalam.
    Malayalam,
    /// Sinhala.
    Sinhala,
    /// Thai.
    Thai,
    /// Lao.
    Lao,
    /// Khmer.
    Khmer,
    /// Myanmar (Burmese).
    Myanmar,
    /// Ethiopic (Amharic, Tigrinya…).
    Ethiopic,
    /// Han ideographs (Chinese hanzi, Japanese kanji, Korean hanja).
    Han,
    /// Japanese kana: hiragana and katakana (half-width too).
    Kana,
    /// Korean hangul.
    Hangul,
}

/// Every script, in declaration order (index = `Script as usize`).
pub(super) const SCRIPTS: [Script; 25] = [
    Script::Latin,
    Script::Cyrillic,
    Script::Greek,
    Script::Armenian,
    Script::Georgian,
    Script::Hebrew,
    Script::Arabic,
    Script::Devanagari,
    Script::Bengali,
    Script::Gurmukhi,
    Script::Gujarati,
    Script::Oriya,
    Script::Tamil,
    Script::Telugu,
    Script::Kannada,
    Script::Malayalam,
    Script::Sinhala,
    Script::Thai,
    Script::Lao,
    Script::Khmer,
    Script::Myanmar,
    Script::Ethiopic,
    Script::Han,
    Script::Kana,
    Script::Hangul,
];

impl Script {
    /// The script of a letter, or `None` for anything that is not a letter
    /// ([`char::is_alphabetic`]) of a script listed here.
    ///
    /// ```
    /// use polyrelay::routing::Script;
    /// assert_eq!(Script::of('退'), Some(Script::Han));
    /// assert_eq!(Script::of('カ'), Some(Script::Kana));
    /// assert_eq!(Script::of('한'), Some(Script::Hangul));
    /// assert_eq!(Script::of('é'), Some(Script::Latin));
    /// assert_eq!(Script::of('7'), None);
    /// ```
    pub fn of(c: char) -> Option<Script> {
        if c.is_ascii() {
            return c.is_ascii_alphabetic().then_some(Script::Latin);
        }
        let (script, every_char_a_letter) = Self::block(c)?;
        (every_char_a_letter || c.is_alphabetic()).then_some(script)
    }

    /// The script of the block `c` lies in, and whether every character of that range is a
    /// letter (so the Unicode letter table need not be consulted: the common CJK, kana,
    /// hangul, Latin-1 and basic Cyrillic letters).
    fn block(c: char) -> Option<(Script, bool)> {
        Some(match c as u32 {
            0x4E00..=0x9FFF | 0x3400..=0x4DBF => (Script::Han, true),
            0xAC00..=0xD7A3 => (Script::Hangul, true),
            0x3041..=0x3096 | 0x30A1..=0x30FA | 0x30FC..=0x30FF => (Script::Kana, true),
            0x00C0..=0x00D6 | 0x00D8..=0x00F6 | 0x00F8..=0x024F => (Script::Latin, true),
            0x0410..=0x044F => (Script::Cyrillic, true),
            0x00AA..=0x00BF
            | 0x0250..=0x02AF
            | 0x1D00..=0x1DBF
            | 0x1E00..=0x1EFF
            | 0x2C60..=0x2C7F
            | 0xA720..=0xA7FF
            | 0xAB30..=0xAB6F
            | 0xFB00..=0xFB06
            | 0xFF21..=0xFF3A
            | 0xFF41..=0xFF5A => (Script::Latin, false),
            0x0370..=0x03FF | 0x1F00..=0x1FFF => (Script::Greek, false),
            0x0400..=0x052F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => {
                (Script::Cyrillic, false)
            }
            0x0530..=0x058F | 0xFB13..=0xFB17 => (Script::Armenian, false),
            0x0590..=0x05FF | 0xFB1D..=0xFB4F => (Script::Hebrew, false),
            0x0600..=0x06FF
            | 0x0750..=0x077F
            | 0x0870..=0x08FF
            | 0xFB50..=0xFDFF
            | 0xFE70..=0xFEFF => (Script::Arabic, false),
            0x0900..=0x097F | 0xA8E0..=0xA8FF => (Script::Devanagari, false),
            0x0980..=0x09FF => (Script::Bengali, false),
            0x0A00..=0x0A7F => (Script::Gurmukhi, false),
            0x0A80..=0x0AFF => (Script::Gujarati, false),
            0x0B00..=0x0B7F => (Script::Oriya, false),
            0x0B80..=0x0BFF => (Script::Tamil, false),
            0x0C00..=0x0C7F => (Script::Telugu, false),
            0x0C80..=0x0CFF => (Script::Kannada, false),
            0x0D00..=0x0D7F => (Script::Malayalam, false),
            0x0D80..=0x0DFF => (Script::Sinhala, false),
            0x0E00..=0x0E7F => (Script::Thai, false),
            0x0E80..=0x0EFF => (Script::Lao, false),
            0x1000..=0x109F | 0xA9E0..=0xA9FF | 0xAA60..=0xAA7F => (Script::Myanmar, false),
            0x10A0..=0x10FF | 0x1C90..=0x1CBF | 0x2D00..=0x2D2F => (Script::Georgian, false),
            0x1100..=0x11FF
            | 0x3130..=0x318F
            | 0xA960..=0xA97F
            | 0xD7A4..=0xD7FF
            | 0xFFA0..=0xFFDC => (Script::Hangul, false),
            0x1200..=0x139F | 0x2D80..=0x2DDF | 0xAB00..=0xAB2F => (Script::Ethiopic, false),
            0x1780..=0x17FF | 0x19E0..=0x19FF => (Script::Khmer, false),
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F | 0x1B000..=0x1B16F => {
                (Script::Kana, false)
            }
            0x2E80..=0x2FDF
            | 0x3005
            | 0x3007
            | 0x3021..=0x3029
            | 0x3038..=0x303B
            | 0xF900..=0xFAFF
            | 0x20000..=0x3FFFF => (Script::Han, false),
            _ => return None,
        })
    }

    /// The script named `name` ([`Script::name`]'s spelling, any case), if any.
    ///
    /// ```
    /// use polyrelay::routing::Script;
    /// assert_eq!(Script::from_name("Han"), Some(Script::Han));
    /// assert_eq!(Script::from_name("klingon"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Script> {
        SCRIPTS
            .iter()
            .copied()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The script's name in lower case, as routing reasons show it (`han`, `kana`, `latin`…).
    pub fn name(self) -> &'static str {
        match self {
            Script::Latin => "latin",
            Script::Cyrillic => "cyrillic",
            Script::Greek => "greek",
            Script::Armenian => "armenian",
            Script::Georgian => "georgian",
            Script::Hebrew => "hebrew",
            Script::Arabic => "arabic",
            Script::Devanagari => "devanagari",
            Script::Bengali => "bengali",
            Script::Gurmukhi => "gurmukhi",
            Script::Gujarati => "gujarati",
            Script::Oriya => "oriya",
            Script::Tamil => "tamil",
            Script::Telugu => "telugu",
            Script::Kannada => "kannada",
            Script::Malayalam => "malayalam",
            Script::Sinhala => "sinhala",
            Script::Thai => "thai",
            Script::Lao => "lao",
            Script::Khmer => "khmer",
            Script::Myanmar => "myanmar",
            Script::Ethiopic => "ethiopic",
            Script::Han => "han",
            Script::Kana => "kana",
            Script::Hangul => "hangul",
        }
    }
}

impl std::fmt::Display for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
