//! Language names as a [`LanguageRule`](super::LanguageRule) accepts them: ISO 639-1
//! (`zh`), ISO 639-3 (`cmn`, also `zho`), ISO 639-2/B (`chi`), and English names
//! (`Chinese`), any case.

use whatlang::Lang;

/// Every language the rule detects: its two-letter code, and the other codes and English
/// names it goes by besides whatlang's ISO 639-3 code and English name.
const ALIASES: &[(Lang, &str, &[&str])] = &[
    (Lang::Afr, "af", &[]),
    (Lang::Aka, "ak", &["twi"]),
    (Lang::Amh, "am", &[]),
    (Lang::Ara, "ar", &["arb"]),
    (Lang::Aze, "az", &["azj"]),
    (Lang::Bel, "be", &[]),
    (Lang::Ben, "bn", &["bangla"]),
    (Lang::Bul, "bg", &[]),
    (Lang::Cat, "ca", &[]),
    (Lang::Ces, "cs", &["cze"]),
    (
        Lang::Cmn,
        "zh",
        &["zho", "chi", "chinese", "mandarin chinese"],
    ),
    (Lang::Cym, "cy", &["wel"]),
    (Lang::Dan, "da", &[]),
    (Lang::Deu, "de", &["ger"]),
    (Lang::Ell, "el", &["gre"]),
    (Lang::Eng, "en", &[]),
    (Lang::Epo, "eo", &[]),
    (Lang::Est, "et", &["ekk"]),
    (Lang::Fin, "fi", &[]),
    (Lang::Fra, "fr", &["fre"]),
    (Lang::Guj, "gu", &[]),
    (Lang::Heb, "he", &["iw"]),
    (Lang::Hin, "hi", &[]),
    (Lang::Hrv, "hr", &[]),
    (Lang::Hun, "hu", &[]),
    (Lang::Hye, "hy", &["arm"]),
    (Lang::Ind, "id", &[]),
    (Lang::Ita, "it", &[]),
    (Lang::Jav, "jv", &[]),
    (Lang::Jpn, "ja", &[]),
    (Lang::Kan, "kn", &[]),
    (Lang::Kat, "ka", &["geo"]),
    (Lang::Khm, "km", &[]),
    (Lang::Kor, "ko", &[]),
    (Lang::Lat, "la", &[]),
    (Lang::Lav, "lv", &["lvs"]),
    (Lang::Lit, "lt", &[]),
    (Lang::Mal, "ml", &[]),
    (Lang::Mar, "mr", &[]),
    (Lang::Mkd, "mk", &["mac"]),
    (Lang::Mya, "my", &["bur", "myanmar"]),
    (Lang::Nep, "ne", &["npi"]),
    (Lang::Nld, "nl", &["dut", "flemish"]),
    (
        Lang::Nob,
        "nb",
        &[
            "no",
            "nor",
            "norwegian",
            "norwegian bokmal",
            "bokmål",
            "norwegian bokmål",
        ],
    ),
    (Lang::Ori, "or", &["ory", "odia"]),
    (Lang::Pan, "pa", &["pnb", "panjabi"]),
    (Lang::Pes, "fa", &["fas", "per", "farsi"]),
    (Lang::Pol, "pl", &[]),
    (Lang::Por, "pt", &[]),
    (Lang::Ron, "ro", &["rum", "moldovan"]),
    (Lang::Rus, "ru", &[]),
    (Lang::Sin, "si", &["sinhala"]),
    (Lang::Slk, "sk", &["slo"]),
    (Lang::Slv, "sl", &["slovenian"]),
    (Lang::Sna, "sn", &[]),
    (Lang::Spa, "es", &["castilian"]),
    (Lang::Srp, "sr", &[]),
    (Lang::Swe, "sv", &[]),
    (Lang::Tam, "ta", &[]),
    (Lang::Tel, "te", &[]),
    (Lang::Tgl, "tl", &["fil", "filipino"]),
    (Lang::Tha, "th", &[]),
    (Lang::Tuk, "tk", &[]),
    (Lang::Tur, "tr", &[]),
    (Lang::Ukr, "uk", &[]),
    (Lang::Urd, "ur", &[]),
    (Lang::Uzb, "uz", &["uzn"]),
    (Lang::Vie, "vi", &[]),
    (Lang::Yid, "yi", &["ji"]),
    (Lang::Zul, "zu", &[]),
];

/// The language `name` names (see the module docs), if the rule detects it.
pub(super) fn resolve(name: &str) -> Option<Lang> {
    let name = name.trim();
    let lower = name.to_lowercase();
    ALIASES
        .iter()
        .find(|(lang, two, other)| {
            *two == lower
                || lang.code() == lower
                || lang.eng_name().eq_ignore_ascii_case(name)
                || other.contains(&lower.as_str())
        })
        .map(|&(lang, ..)| lang)
}

/// A `Config` error for a name [`resolve`] does not know.
pub(super) fn unknown(name: &str) -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Config,
        format!(
            "unknown language {name:?}: not an ISO 639-1 or ISO 639-3 code or the English name \
             of a language the language rule detects (e.g. \"zh\", \"cmn\" or \"Chinese\"; \
             \"de\", \"deu\" or \"German\")"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_its_codes_and_names() {
        assert_eq!(ALIASES.len(), Lang::all().len());
        for &lang in Lang::all() {
            assert_eq!(resolve(lang.code()), Some(lang), "{lang:?}");
            assert_eq!(resolve(lang.eng_name()), Some(lang), "{lang:?}");
            let Some((_, two, _)) = ALIASES.iter().find(|(l, ..)| *l == lang) else {
                panic!("{lang:?} has no two-letter code")
            };
            assert_eq!(resolve(two), Some(lang), "{lang:?}");
            assert_eq!(resolve(&two.to_uppercase()), Some(lang), "{lang:?}");
        }
        // No code or name names two languages.
        let mut seen = std::collections::HashSet::new();
        for (lang, two, other) in ALIASES {
            for n in [*two, lang.code(), &lang.eng_name().to_lowercase()]
                .into_iter()
                .chain(other.iter().copied())
            {
                assert!(seen.insert(n.to_owned()), "{n} twice");
            }
        }
    }

    #[test]
    fn chinese_by_any_name() {
        for name in [
            "zh", "ZH", " cmn ", "zho", "chi", "Chinese", "chinese", "Mandarin",
        ] {
            assert_eq!(resolve(name), Some(Lang::Cmn), "{name}");
        }
        for name in ["German", "GERMAN", "de", "deu", "ger"] {
            assert_eq!(resolve(name), Some(Lang::Deu), "{name}");
        }
        for name in [
            "",
            "zz",
            "xx-YY",
            "Klingon",
            "isl",
            "is",
            "Icelandic",
            "zh-CN",
        ] {
            assert_eq!(resolve(name), None, "{name}");
        }
        let e = unknown("zz");
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("\"zz\""), "{e}");
    }
}
