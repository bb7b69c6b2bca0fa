//! An in-process text classifier trained from labelled example queries
//! ([`TextClassifier`]), saved and loaded in a versioned binary format, and the rule that
//! routes by its label ([`ClassifierRule`]).
//!
//! The method and the model-file layout are described on [`TextClassifier`]; training
//! options on [`TrainOptions`].
//!
//! Files: `features.rs` (hashed n-grams), `train.rs` (options, training), `linear.rs` (the
//! model, SGD), `weights.rs` (its quantised weights), `calibrate.rs`
//! (temperature and isotonic map on out-of-fold scores), `model_file.rs` (the saved format),
//! `load.rs` (JSONL and CSV examples), `rule.rs` ([`ClassifierRule`]).

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use crate::types::{Error, ErrorKind};

mod calibrate;
mod features;
mod linear;
mod load;
mod model_file;
mod rule;
#[cfg(test)]
mod tests;
mod train;
mod weights;

use calibrate::Calibration;
use features::{FeatureMap, FeatureSpec, Scratch, runs};
use linear::Sparse;
pub use rule::ClassifierRule;
pub use train::TrainOptions;
use weights::Weights;

fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// A text classifier trained in process from labelled examples: give it example queries
/// with their labels (in code, or a JSONL or CSV file) and it labels new queries in
/// microseconds, with no network call. Save the trained model ([`save`](Self::save)) and
/// ship it: [`load`](Self::load) reads it back in milliseconds.
///
/// Training is deterministic (the same examples in the same order with the same
/// [`TrainOptions`] give a byte-identical model); [`classify`](Self::classify) answers the
/// best label and its calibrated confidence, or abstains; [`predict`](Self::predict) lists
/// every label. Share one classifier between rules with an [`Arc`].
///
/// ```
/// use polyrelay::routing::TextClassifier;
/// let clf = TextClassifier::train([
///     ("where is my order", "order_status"),
///     ("my parcel has not arrived yet", "order_status"),
///     ("tracking number for my package", "order_status"),
///     ("I want my money back", "refund_dispute"),
///     ("please refund the duplicate charge", "refund_dispute"),
///     ("my refund has not arrived", "refund_dispute"),
/// ])?;
/// let p = clf.predict("where's my parcel?");
/// assert_eq!(&*p.label, "order_status");
/// // Ship it: the bytes (or a file) load back into the same model.
/// let again = TextClassifier::from_bytes(&clf.to_bytes())?;
/// assert_eq!(again.predict("where's my parcel?"), p);
/// # Ok::<(), polyrelay::Error>(())
/// ```
///
/// # Method
///
/// Features (no tokenizer, no regex, no allocation per feature):
///
/// - text is lower-cased (Unicode-aware), common Latin diacritics are folded (`é` → `e`,
///   `ü` → `u`; combining marks dropped), full-width ASCII is mapped to ASCII, every digit
///   becomes `0` (order numbers look alike);
/// - words are runs of letters and digits; a run changes word where the script changes
///   between space-separated scripts and scripts written without spaces (Chinese, Japanese,
///   Korean, Thai…);
/// - word unigrams and bigrams;
/// - character 3- to 5-grams inside each word, with word-boundary marks (`<ref`, `und>`), so
///   typos and inflections share most of their features; in scripts written without spaces,
///   character 1- to 3-grams of the run instead (a Chinese word is mostly two characters);
/// - each feature is a 64-bit hash (FNV-1a, then a 64-bit finaliser): deterministic, with no
///   vocabulary strings kept.
///
/// Weighting: sublinear term frequency (`1 + ln tf`) times smoothed inverse document
/// frequency, the vector L2-normalised (features never seen in training count in the norm
/// with the largest IDF, so a query made of unknown words scores low everywhere).
///
/// Model: multinomial logistic regression (softmax) over those vectors, trained by averaged
/// stochastic gradient descent with L2 regularisation (by default 20 passes in a seeded
/// order, the weights averaged over the last 10; see [`TrainOptions`]), so the same examples
/// always give the same model. The trained weights are then kept as 8-bit integers with one
/// scale per feature row (a quarter of the memory and of the file; accuracy on the public
/// benchmarks unchanged to the tenth of a point). A decision is one sparse dot product per label: a few µs for
/// a short query, about 10 µs for a 180-character ticket (release build).
///
/// Confidence: calibrated on held-out folds. At training time a k-fold cross-validation of
/// the same model (5 folds by default) gives every example an out-of-fold prediction; a
/// temperature for the softmax is fitted to them (least log loss), then an isotonic map from
/// the best label's probability to the share of such answers that were right. So a confidence
/// of 0.8 means about 8 in 10 such answers are right on queries like the examples (the
/// reliability tables on public benchmarks are in `docs/routing-quality/classifier.md`). It
/// is `0` when the text has no feature seen in training. [`classify`](Self::classify)
/// abstains below [`abstain_below`](Self::abstain_below) (0.5 by default): a query of an
/// intent the examples do not cover mostly scores low everywhere.
///
/// Why this method: on the crate's multilingual support-ticket set (`tests/data/`) it was
/// more accurate than nearest centroid (cosine over the same vectors) and a little more than
/// scikit-learn's TF-IDF baselines (logistic regression, linear SVM, naive Bayes over word
/// and character n-grams) in cross-validation; a heavier model has too few examples to learn
/// from, and a hand-written one keeps the crate free of ML dependencies, fully deterministic
/// and allocation-light. Accuracy is bound by the examples: give each label at least a few
/// dozen, in each language it must understand.
///
/// # Model files
///
/// [`to_bytes`](Self::to_bytes) / [`save`](Self::save) write, and
/// [`from_bytes`](Self::from_bytes) / [`load`](Self::load) read, this format (version 2; all
/// integers and floats little-endian, floats IEEE 754 `f32`):
///
/// | bytes | field |
/// |---|---|
/// | 8 | magic: `polyclf\0` |
/// | 4 | format version: `u32` 2 |
/// | 4 | header length: `u32` 48 |
/// | 4 · 4 | header: labels `K`, feature rows `R`, calibration points `C`, label-name bytes `N` (`u32` each) |
/// | 8 | examples trained on (`u64`) |
/// | 5 + 3 | word bigrams (0/1), character n-gram min and max, unsegmented n-gram min and max (`u8` each), 3 zero bytes |
/// | 4 · 4 | IDF of an unknown feature, logit multiplier (1 / temperature), abstain threshold (`f32` each), 4 reserved zero bytes |
/// | 4 · K | label name lengths (`u32`) |
/// | N | label names, UTF-8, sorted and unique |
/// | 8 · C | calibration points: (probability, confidence) `f32` pairs, ascending |
/// | 8 · R | feature hashes (`u64`), strictly ascending: row `i` is the `i`-th |
/// | 4 · R | IDF per row |
/// | 4 · R | scale per row (its largest absolute weight / 127; `f32`, at least 0) |
/// | 4 · K | bias per label |
/// | R · K | weights, row-major, `i8` each: the weight of feature row `r` for label `l` is `scale[r] · q[r · K + l]` |
/// | 4 | CRC-32 (IEEE) of every byte before it |
///
/// A reader checks, in order: the magic, the version, the header length, that the sizes the
/// header declares add up to the file's length (so no allocation exceeds what the file
/// holds), the checksum, then every value (labels sorted and unique, hashes ascending, finite
/// numbers, calibration monotone). Any failure is a [`Config`](ErrorKind::Config) error that
/// says what failed; nothing panics. A model of 15,000 short queries over 150 labels is
/// about 10 MB and loads in about 10 ms in a release build.
///
/// Version 1 (written by polyrelay before this format) is still read: it is the same layout
/// without the row scales and with `f32` weights (4 · R · K bytes), which are quantised on
/// load as training quantises them, so its answers may differ from the version-1 model's in
/// the third decimal of a confidence. Files are always written as version 2.
#[derive(Clone)]
pub struct TextClassifier {
    labels: Vec<Arc<str>>,
    features: FeatureSpec,
    /// Feature hash → row of `idf` and of the model's weights.
    index: FeatureMap<u32>,
    idf: Vec<f32>,
    /// The IDF of a feature never seen in training.
    unknown_idf: f32,
    model: Weights,
    /// The logit multiplier fitted by cross-validation (1 / temperature).
    tau: f32,
    /// The map from the best probability to a calibrated confidence.
    calibration: Calibration,
    /// [`classify`](Self::classify) abstains below this confidence.
    abstain_below: f32,
    examples: usize,
}

impl fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextClassifier")
            .field("labels", &self.labels)
            .field("examples", &self.examples)
            .field("features", &self.index.len())
            .field("abstain_below", &self.abstain_below)
            .finish_non_exhaustive()
    }
}

/// A [`TextClassifier`]'s answer for one text, with every label's score
/// ([`TextClassifier::predict`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Prediction {
    /// The most probable label.
    pub label: Arc<str>,
    /// The calibrated confidence that [`label`](Self::label) is right, in `0..=1`; `0` when
    /// the text has no feature seen in training.
    pub confidence: f32,
    /// The best score minus the second best, in `0..=1`; `0` when the text has no feature
    /// seen in training.
    pub margin: f32,
    /// Every label with its probability (the temperature-scaled softmax, summing to 1), the
    /// most probable first. The first one's probability is the uncalibrated counterpart of
    /// [`confidence`](Self::confidence).
    pub scores: Vec<(Arc<str>, f32)>,
}

/// Buffers reused by a thread's decisions.
#[derive(Default)]
struct Buffers {
    scratch: Scratch,
    vector: Sparse,
    logits: Vec<f32>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Runs `f` with this thread's buffers (fresh ones if they are in use).
fn with_buffers<R>(f: impl FnOnce(&mut Buffers) -> R) -> R {
    BUFFERS.with(|b| match b.try_borrow_mut() {
        Ok(mut b) => f(&mut b),
        Err(_) => f(&mut Buffers::default()),
    })
}

impl TextClassifier {
    /// Trains a classifier on `(text, label)` pairs with the default [`TrainOptions`].
    ///
    /// Training takes about 0.3 s for 600 examples in an optimised build (a few seconds
    /// unoptimised), most of it the cross-validation that calibrates the confidence, and
    /// about 20 s for 10,000 (save the model and [`load`](Self::load) it instead of training
    /// at every start).
    ///
    /// Fails with a [`Config`](ErrorKind::Config) error when there are no examples, fewer
    /// than two labels, an empty label, or a text with nothing to learn from (no letter or
    /// digit); the message names the example (counted from 1).
    pub fn train<T, L>(examples: impl IntoIterator<Item = (T, L)>) -> Result<Self, Error>
    where
        T: AsRef<str>,
        L: AsRef<str>,
    {
        Self::train_with(examples, &TrainOptions::default())
    }

    /// The labels, in sorted order.
    pub fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    /// How many examples the model was trained on.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// The confidence under which [`classify`](Self::classify) abstains: the
    /// [`TrainOptions::abstain_below`] it was trained with (default 0.5), kept in a saved
    /// model.
    pub fn abstain_below(&self) -> f32 {
        self.abstain_below
    }

    /// The same model with another abstain threshold (clamped to `0..=1`; a NaN keeps the
    /// current one).
    pub fn with_abstain_below(mut self, confidence: f32) -> Self {
        if !confidence.is_nan() {
            self.abstain_below = confidence.clamp(0.0, 1.0);
        }
        self
    }

    /// The best label for `text` and its calibrated confidence, or `None` (abstain) when
    /// the confidence is below [`abstain_below`](Self::abstain_below) or the text has no
    /// feature seen in training. The cheap path: no score list is built or sorted, and the
    /// buffers are reused.
    pub fn classify(&self, text: &str) -> Option<(&str, f32)> {
        let (index, confidence) = self.top(text);
        if confidence < self.abstain_below || confidence <= 0.0 {
            return None;
        }
        Some((self.labels.get(index)?, confidence))
    }

    /// Labels `text`, with every label's probability ([`classify`](Self::classify) is the
    /// cheap path when the best label is all you need).
    pub fn predict(&self, text: &str) -> Prediction {
        let mut probs = vec![0.0f32; self.labels.len()];
        let known = with_buffers(|b| self.logits(text, b, &mut probs));
        linear::softmax(&mut probs);
        let mut scores: Vec<(Arc<str>, f32)> = self
            .labels
            .iter()
            .cloned()
            .zip(probs.iter().copied())
            .collect();
        scores.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let best = scores.first().map_or(0.0, |s| s.1);
        let second = scores.get(1).map_or(0.0, |s| s.1);
        let label = scores
            .first()
            .map_or_else(|| Arc::from(""), |s| s.0.clone());
        let (confidence, margin) = if known {
            (self.calibration.apply(best), best - second)
        } else {
            (0.0, 0.0)
        };
        Prediction {
            label,
            confidence,
            margin,
            scores,
        }
    }

    /// The best label's index and calibrated confidence (`0` when no feature is known).
    fn top(&self, text: &str) -> (usize, f32) {
        with_buffers(|b| {
            let mut logits = std::mem::take(&mut b.logits);
            logits.resize(self.labels.len(), 0.0);
            let known = self.logits(text, b, &mut logits);
            let (mut best, mut max) = (0, f32::NEG_INFINITY);
            for (i, &z) in logits.iter().enumerate() {
                if z > max {
                    (best, max) = (i, z);
                }
            }
            // The best softmax probability: 1 / Σ exp(z - max).
            let sum: f32 = logits.iter().map(|&z| (z - max).exp()).sum();
            b.logits = logits;
            let p = if known && sum > 0.0 { 1.0 / sum } else { 0.0 };
            (
                best,
                if known {
                    self.calibration.apply(p)
                } else {
                    0.0
                },
            )
        })
    }

    /// Fills `out` with every label's temperature-scaled logit; whether any feature was
    /// known.
    fn logits(&self, text: &str, b: &mut Buffers, out: &mut [f32]) -> bool {
        self.features.extract(text, &mut b.scratch);
        let mut vector = std::mem::take(&mut b.vector);
        self.vectorize(&b.scratch.hashes, &mut vector);
        self.model.logits(&vector, out);
        for z in out.iter_mut() {
            *z *= self.tau;
        }
        let known = !vector.is_empty();
        b.vector = vector;
        known
    }

    /// The TF-IDF vector (L2-normalised over known and unknown features) of sorted feature
    /// hashes, as (row, value) pairs for the known ones.
    fn vectorize(&self, sorted: &[u64], out: &mut Sparse) {
        out.clear();
        let mut norm2 = 0.0f32;
        for (h, tf) in runs(sorted) {
            let w = 1.0 + (tf as f32).ln();
            match self
                .index
                .get(&h)
                .and_then(|&row| Some((row, *self.idf.get(row as usize)?)))
            {
                Some((row, idf)) => {
                    let v = w * idf;
                    norm2 += v * v;
                    out.push((row, v));
                }
                None => {
                    let v = w * self.unknown_idf;
                    norm2 += v * v;
                }
            }
        }
        if norm2 > 0.0 {
            let inv = 1.0 / norm2.sqrt();
            for (_, v) in out.iter_mut() {
                *v *= inv;
            }
        }
    }
}
