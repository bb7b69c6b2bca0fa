//! Unit tests: the model file format, calibration, CSV parsing, options, determinism.

use super::calibrate::Calibration;
use super::*;

/// A small three-label set, 16 examples a label (enough for 5 calibration folds).
fn examples() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let order = ["order", "parcel", "package", "delivery"];
    let refund = ["refund", "money back", "charge", "reimburse"];
    let login = ["password", "log in", "account", "sign in"];
    for (i, w) in order.iter().enumerate() {
        for tail in ["has not arrived", "is late", "where is it", "tracking"] {
            out.push((format!("my {w} {tail} {i}"), "order_status"));
        }
    }
    for w in refund {
        for tail in ["please", "I want", "was wrong", "twice"] {
            out.push((format!("{tail} {w} for the item"), "refund"));
        }
    }
    for w in login {
        for tail in ["forgot my", "cannot use my", "reset my", "locked"] {
            out.push((format!("{tail} {w} today"), "account"));
        }
    }
    out
}

fn model() -> TextClassifier {
    TextClassifier::train(examples()).expect("trains")
}

fn config_error(bytes: &[u8]) -> String {
    match TextClassifier::from_bytes(bytes) {
        Ok(_) => panic!("accepted {} bytes", bytes.len()),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            e.message().to_owned()
        }
    }
}

/// Writes the CRC of `bytes` (all but the last 4) into the last 4.
fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_model_round_trips_through_bytes_identically() {
    let clf = model();
    let bytes = clf.to_bytes();
    assert_eq!(&bytes[..8], b"polyclf\0");
    let back = TextClassifier::from_bytes(&bytes).expect("loads");
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.labels(), clf.labels());
    assert_eq!(back.abstain_below(), clf.abstain_below());
    assert_eq!(back.examples(), clf.examples());
    for (text, _) in examples().iter().step_by(3) {
        assert_eq!(back.predict(text), clf.predict(text), "{text}");
    }
    assert_eq!(
        back.predict("where is my parcel"),
        clf.predict("where is my parcel")
    );
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = model().to_bytes();
    for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let m = config_error(&bytes[..cut]);
        assert!(
            m.contains("truncated") || m.contains("magic"),
            "cut at {cut}: {m}"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 5]);
    assert!(config_error(&longer).contains("5 bytes past the end"));
}

#[test]
fn wrong_magic_version_or_checksum_are_named() {
    let bytes = model().to_bytes();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(config_error(&b).contains("magic"));

    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&3u32.to_le_bytes());
    let m = config_error(&b);
    assert!(
        m.contains("format version 3") && m.contains("reads versions 1 to 2"),
        "{m}"
    );

    // One flipped bit in the weights: the checksum catches it.
    let mut b = bytes.clone();
    let i = b.len() - 40;
    b[i] ^= 0x10;
    let m = config_error(&b);
    assert!(m.contains("checksum mismatch"), "{m}");
}

/// The version-1 bytes of `clf`: its weights as `f32`, no row scales.
fn version_1_bytes(clf: &TextClassifier) -> Vec<u8> {
    let v2 = clf.to_bytes();
    let (k, r) = (clf.labels().len(), clf.idf.len());
    let names: usize = clf.labels().iter().map(|l| l.len()).sum();
    let scales_at = 16 + 48 + 4 * k + names + 8 * clf.calibration.points.len() + 12 * r;
    let mut v1 = v2[..scales_at].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let bias_at = scales_at + 4 * r;
    v1.extend_from_slice(&v2[bias_at..bias_at + 4 * k]);
    for (i, &q) in clf.model.weights.iter().enumerate() {
        let w = clf.model.scales[i / k] * f32::from(q);
        v1.extend_from_slice(&w.to_le_bytes());
    }
    v1.extend_from_slice(&[0; 4]);
    reseal(&mut v1);
    v1
}

#[test]
fn version_2_stores_a_byte_a_weight_and_version_1_files_still_load() {
    let clf = model();
    let v1 = version_1_bytes(&clf);
    let v2 = clf.to_bytes();
    let weights = clf.labels().len() * clf.idf.len();
    // 4 bytes a weight in version 1, 1 byte and a scale per row in version 2.
    assert_eq!(v1.len() - v2.len(), 3 * weights - 4 * clf.idf.len());
    let old = TextClassifier::from_bytes(&v1).expect("a version-1 file loads");
    for (text, _) in examples().iter().step_by(2) {
        let (a, b) = (old.predict(text), clf.predict(text));
        assert_eq!(a.label, b.label, "{text}");
        assert!(
            (a.confidence - b.confidence).abs() < 1e-3,
            "{text}: {a:?} {b:?}"
        );
    }
}

#[test]
fn a_header_claiming_huge_sizes_fails_before_allocating() {
    let mut b = model().to_bytes();
    // 2^32 - 1 rows × 2^32 - 1 labels: 2^66 bytes of weights.
    b[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    let m = config_error(&b);
    assert!(
        m.contains("impossible size") || m.contains("truncated"),
        "{m}"
    );

    // 2^28 rows × 4096 labels = 2^40 weights: fits usize, far beyond the file.
    let mut b = model().to_bytes();
    b[16..20].copy_from_slice(&4096u32.to_le_bytes());
    b[20..24].copy_from_slice(&(1u32 << 28).to_le_bytes());
    reseal(&mut b);
    let m = config_error(&b);
    assert!(m.contains("truncated") && m.contains("declares"), "{m}");
}

#[test]
fn inconsistent_values_with_a_valid_checksum_are_rejected() {
    let clf = model();
    let bytes = clf.to_bytes();
    let (k, r) = (clf.labels().len(), clf.idf.len());
    let names: usize = clf.labels().iter().map(|l| l.len()).sum();
    let points = clf.calibration.points.len();
    let hashes_at = 16 + 48 + 4 * k + names + 8 * points;

    // Two feature hashes swapped: no longer ascending.
    let mut b = bytes.clone();
    let (a, c) = (hashes_at, hashes_at + 8);
    let first: Vec<u8> = b[a..a + 8].to_vec();
    b.copy_within(c..c + 8, a);
    b[c..c + 8].copy_from_slice(&first);
    reseal(&mut b);
    assert!(config_error(&b).contains("ascending"));

    // A NaN weight.
    let mut b = bytes.clone();
    let w = hashes_at + 8 * r + 4 * r + 4 * k;
    b[w..w + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b);
    assert!(config_error(&b).contains("finite"));

    // An abstain threshold above 1.
    let mut b = bytes.clone();
    b[16 + 40..16 + 44].copy_from_slice(&1.5f32.to_le_bytes());
    reseal(&mut b);
    assert!(config_error(&b).contains("invalid numbers"));

    // A label name that is not UTF-8.
    let mut b = bytes;
    b[16 + 48 + 4 * k] = 0xff;
    reseal(&mut b);
    assert!(config_error(&b).contains("UTF-8"));
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let a = TextClassifier::train_with(examples(), &TrainOptions::default().seed(42)).unwrap();
    let b = TextClassifier::train_with(examples(), &TrainOptions::default().seed(42)).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    let c = TextClassifier::train_with(examples(), &TrainOptions::default().seed(43)).unwrap();
    assert_ne!(a.to_bytes(), c.to_bytes());
}

#[test]
fn classify_is_predict_without_the_list_and_abstains_below_the_threshold() {
    let clf = model();
    for (text, label) in examples().iter().step_by(5) {
        let p = clf.predict(text);
        let (l, c) = clf.classify(text).expect("a known query");
        assert_eq!((l, c), (&*p.label, p.confidence), "{text}");
        assert_eq!(l, *label);
    }
    // Nothing known: abstains.
    assert_eq!(clf.classify("zzqx"), None);
    assert_eq!(clf.classify(""), None);
    // A threshold above the confidence: abstains; at 0, answers anything known.
    let (_, c) = clf.classify("my parcel is late").expect("known");
    assert!(c < 1.0, "{c}");
    let strict = clf.clone().with_abstain_below(c + 1e-4);
    assert_eq!(strict.classify("my parcel is late"), None);
    let lenient = clf.with_abstain_below(0.0);
    assert!(lenient.classify("my parcel is late").is_some());
}

#[test]
fn isotonic_calibration_is_monotone_and_matches_the_observed_rate() {
    // Probability p right with rate p², deterministic: among 1,000 values of p in each of
    // ten levels, the first round(1000 · p²) are right.
    let mut pairs = Vec::new();
    for level in 1..=10 {
        let p = level as f32 / 10.0;
        let right = (1000.0 * p * p).round() as usize;
        for i in 0..1000 {
            pairs.push((p, i < right));
        }
    }
    let cal = Calibration::isotonic(pairs);
    assert!(cal.is_valid());
    assert!(cal.points.len() <= calibrate::MAX_POINTS);
    for level in 1..=10 {
        let p = level as f32 / 10.0;
        assert!((cal.apply(p) - p * p).abs() < 0.01, "{p}: {}", cal.apply(p));
    }
    // Between and beyond the points.
    assert!((cal.apply(0.55) - (0.25 + 0.36) / 2.0).abs() < 0.01);
    assert_eq!(cal.apply(0.0), cal.apply(0.1));
    // A violation is pooled: right at 0.2, wrong at 0.8 → one flat block, its rate (0.5)
    // shrunk toward its mean probability (0.5).
    let flat = Calibration::isotonic(vec![(0.2, true), (0.8, false)]);
    assert_eq!(flat.points, vec![(0.5, 0.5)]);
    // A few answers all right do not claim certainty.
    let few = Calibration::isotonic(vec![(0.6, true); 10]);
    // (With the prior of 2 pseudo-examples: min((10 + 2 · 0.6) / 12, 11 / 12) = 11 / 12.)
    assert!(
        (few.apply(0.6) - 11.0 / 12.0).abs() < 1e-6,
        "{:?}",
        few.points
    );
    let sure = Calibration::isotonic(vec![(1.0, true); 48]);
    assert!(
        (sure.apply(1.0) - 49.0 / 50.0).abs() < 1e-6,
        "{:?}",
        sure.points
    );
    // The identity when empty.
    assert_eq!(Calibration::default().apply(0.37), 0.37);
}

#[test]
fn csv_quotes_commas_and_line_breaks() {
    let csv = "id,label,text\r\n1,greeting,hello there\r\n\
               2,\"complaint\",\"it broke, \"\"again\"\"\nand again\"\n\n3,farewell,bye";
    let rows = TextClassifier::parse_csv(csv).unwrap();
    assert_eq!(
        rows,
        [
            ("hello there".to_owned(), "greeting".to_owned()),
            (
                "it broke, \"again\"\nand again".to_owned(),
                "complaint".to_owned()
            ),
            ("bye".to_owned(), "farewell".to_owned()),
        ]
    );
    let cases = [
        (
            "text,intent\nx,y\n",
            "line 1: the header names no \"label\"",
        ),
        (
            "text,label\nok,a\n\"open,b\n",
            "line 3: a quoted field is not closed",
        ),
        ("a,text,label\n1,2\n", "line 2: 2 fields"),
        (
            "text,label\nhello,a\n\"two\nlines\",\n",
            "line 3: empty label",
        ),
        ("", "no header"),
    ];
    for (csv, expected) in cases {
        let e = TextClassifier::parse_csv(csv).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains(expected), "{csv:?}: {e}");
    }
}

#[test]
fn invalid_options_are_config_errors() {
    for (options, expected) in [
        (TrainOptions::default().epochs(0), "epochs"),
        (
            TrainOptions::default().char_ngrams(5, 3),
            "char_ngrams 5..=3",
        ),
        (
            TrainOptions::default().unsegmented_ngrams(1, 9),
            "unsegmented_ngrams",
        ),
        (TrainOptions::default().l2(f32::NAN), "l2"),
        (TrainOptions::default().learning_rate(0.0), "learning_rate"),
        (TrainOptions::default().abstain_below(1.5), "abstain_below"),
    ] {
        let e = TextClassifier::train_with(examples(), &options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains(expected), "{e}");
    }
}
