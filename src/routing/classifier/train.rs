//! Training: the options ([`TrainOptions`]), TF-IDF vectors, the model (`linear.rs`) and
//! its calibration (`calibrate.rs`).

use std::sync::Arc;

use super::calibrate::{Calibration, fit_calibration};
use super::features::{FeatureMap, FeatureSpec, MAX_NGRAM, Scratch, runs};
use super::linear::{Linear, Sgd, Sparse};
use super::weights::Weights;
use super::{TextClassifier, config};
use crate::types::Error;

/// How [`TextClassifier::train_with`] trains: features, passes, regularisation, the seed,
/// calibration and the abstain threshold. Every setter states its default;
/// `TrainOptions::default()` is what [`TextClassifier::train`] uses.
///
/// Training is deterministic: the same examples in the same order with the same options
/// (seed included) give a byte-identical model ([`TextClassifier::to_bytes`]).
///
/// ```
/// use polyrelay::routing::{TextClassifier, TrainOptions};
/// let options = TrainOptions::default().seed(7).epochs(10).abstain_below(0.6);
/// let clf = TextClassifier::train_with(
///     [("where is my order", "order_status"), ("refund my money", "refund")],
///     &options,
/// )?;
/// assert_eq!(clf.abstain_below(), 0.6);
/// # Ok::<(), polyrelay::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub(super) features: FeatureSpec,
    pub(super) epochs: usize,
    pub(super) average_from: usize,
    pub(super) l2: f32,
    pub(super) learning_rate: f32,
    pub(super) seed: u64,
    pub(super) calibration_folds: usize,
    pub(super) abstain_below: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            features: FeatureSpec::default(),
            epochs: 20,
            average_from: 10,
            l2: 1e-5,
            learning_rate: 1.0,
            seed: Self::DEFAULT_SEED,
            calibration_folds: 5,
            abstain_below: Self::DEFAULT_ABSTAIN_BELOW,
        }
    }
}

impl TrainOptions {
    /// The default [`seed`](Self::seed).
    pub const DEFAULT_SEED: u64 = 0x706f_6c79_7265_6c61;

    /// The default [`abstain_below`](Self::abstain_below): the calibrated confidence under
    /// which [`TextClassifier::classify`] abstains.
    pub const DEFAULT_ABSTAIN_BELOW: f32 = 0.5;

    /// Passes over the examples. Default: 20. Must be at least 1.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }

    /// The weights are averaged over the passes from this one (counted from 0) on
    /// (averaged SGD). Default: 10. At or past [`epochs`](Self::epochs), no averaging.
    pub fn average_from(mut self, pass: usize) -> Self {
        self.average_from = pass;
        self
    }

    /// L2 regularisation, per example. Default: 1e-5. Must be finite and at least 0.
    pub fn l2(mut self, lambda: f32) -> Self {
        self.l2 = lambda;
        self
    }

    /// The initial learning rate (it decays as `rate / (1 + rate · l2 · t)`). Default: 1.0.
    /// Must be finite and above 0.
    pub fn learning_rate(mut self, rate: f32) -> Self {
        self.learning_rate = rate;
        self
    }

    /// The seed of the shuffle before each pass. Default: [`DEFAULT_SEED`](Self::DEFAULT_SEED).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Folds of the cross-validation whose out-of-fold scores calibrate the confidence
    /// (a temperature, then an isotonic map). Default: 5. 0 or 1: no calibration (the raw
    /// softmax probability); with fewer than 4 examples a fold, none either.
    pub fn calibration_folds(mut self, folds: usize) -> Self {
        self.calibration_folds = folds;
        self
    }

    /// The calibrated confidence under which [`TextClassifier::classify`] abstains
    /// (answers `None`). Default: [`DEFAULT_ABSTAIN_BELOW`](Self::DEFAULT_ABSTAIN_BELOW) (0.5). Must be in `0..=1`.
    pub fn abstain_below(mut self, confidence: f32) -> Self {
        self.abstain_below = confidence;
        self
    }

    /// Whether pairs of adjacent words are features. Default: true.
    pub fn word_bigrams(mut self, on: bool) -> Self {
        self.features.word_bigrams = on;
        self
    }

    /// Character n-gram lengths (inclusive) inside words of space-separated scripts, with
    /// word-boundary marks. Default: 3 to 5. `min ≤ max ≤ 8`; `(0, 0)`: none.
    pub fn char_ngrams(mut self, min: usize, max: usize) -> Self {
        self.features.chars = (min, max);
        self
    }

    /// Character n-gram lengths (inclusive) in runs of scripts written without spaces
    /// (Chinese, Japanese, Korean, Thai…). Default: 1 to 3. `min ≤ max ≤ 8`; `(0, 0)`: none.
    pub fn unsegmented_ngrams(mut self, min: usize, max: usize) -> Self {
        self.features.unsegmented_chars = (min, max);
        self
    }

    /// The gradient descent's part of the options.
    fn sgd(&self) -> Sgd {
        Sgd {
            epochs: self.epochs,
            average_from: self.average_from,
            l2: self.l2,
            learning_rate: self.learning_rate,
            seed: self.seed,
        }
    }

    /// The options' mistakes, as a [`Config`](crate::ErrorKind::Config) error.
    fn check(&self) -> Result<(), Error> {
        let range = |what: &str, (lo, hi): (usize, usize)| {
            if lo > hi || hi > MAX_NGRAM {
                Err(config(format!(
                    "classifier options: {what} {lo}..={hi}: need min ≤ max ≤ {MAX_NGRAM}"
                )))
            } else {
                Ok(())
            }
        };
        range("char_ngrams", self.features.chars)?;
        range("unsegmented_ngrams", self.features.unsegmented_chars)?;
        if self.epochs == 0 {
            return Err(config("classifier options: epochs must be at least 1"));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(config(format!(
                "classifier options: l2 must be finite and at least 0, not {}",
                self.l2
            )));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(config(format!(
                "classifier options: learning_rate must be finite and above 0, not {}",
                self.learning_rate
            )));
        }
        if !(0.0..=1.0).contains(&self.abstain_below) {
            return Err(config(format!(
                "classifier options: abstain_below must be in 0..=1, not {}",
                self.abstain_below
            )));
        }
        Ok(())
    }
}

impl TextClassifier {
    /// Trains a classifier on `(text, label)` pairs with `options`. Errors as
    /// [`train`](Self::train), and a [`Config`](crate::ErrorKind::Config) error for invalid
    /// options.
    pub fn train_with<T, L>(
        examples: impl IntoIterator<Item = (T, L)>,
        options: &TrainOptions,
    ) -> Result<Self, Error>
    where
        T: AsRef<str>,
        L: AsRef<str>,
    {
        options.check()?;
        let spec = options.features;
        // Labels and features of every example.
        let mut scratch = Scratch::default();
        let mut docs: Vec<(Arc<str>, Vec<u64>)> = Vec::new();
        let mut labels: Vec<Arc<str>> = Vec::new();
        for (n, (text, label)) in examples.into_iter().enumerate() {
            let label = label.as_ref().trim();
            if label.is_empty() {
                return Err(config(format!("classifier example {}: empty label", n + 1)));
            }
            spec.extract(text.as_ref(), &mut scratch);
            if scratch.hashes.is_empty() {
                return Err(config(format!(
                    "classifier example {} ({label}): no letter or digit in the text",
                    n + 1
                )));
            }
            let label = match labels.binary_search_by(|l| (**l).cmp(label)) {
                Ok(i) => labels[i].clone(),
                Err(i) => {
                    let l: Arc<str> = Arc::from(label);
                    labels.insert(i, l.clone());
                    l
                }
            };
            docs.push((label, scratch.hashes.clone()));
        }
        match (docs.first(), labels.len()) {
            (None, _) => return Err(config("classifier: no training examples")),
            (Some((only, _)), 1) => {
                return Err(config(format!(
                    "classifier: every example has the label {only:?}; at least two labels \
                     are needed"
                )));
            }
            _ => {}
        }

        // Vocabulary and inverse document frequencies.
        let mut df: FeatureMap<u32> = FeatureMap::default();
        for (_, hashes) in &docs {
            for (h, _) in runs(hashes) {
                *df.entry(h).or_insert(0) += 1;
            }
        }
        let mut vocab: Vec<(u64, u32)> = df.into_iter().collect();
        vocab.sort_unstable();
        let n_docs = docs.len() as f32;
        let mut index = FeatureMap::default();
        index.reserve(vocab.len());
        let mut idf = Vec::with_capacity(vocab.len());
        for (row, &(h, d)) in vocab.iter().enumerate() {
            index.insert(h, row as u32);
            idf.push(((1.0 + n_docs) / (1.0 + d as f32)).ln() + 1.0);
        }
        let (rows, k) = (vocab.len(), labels.len());
        let mut clf = TextClassifier {
            labels,
            features: spec,
            index,
            idf,
            unknown_idf: (1.0 + n_docs).ln() + 1.0,
            model: Weights::quantize(&Linear::zeros(0, k)),
            tau: 1.0,
            calibration: Calibration::default(),
            abstain_below: options.abstain_below,
            examples: docs.len(),
        };

        // Vectors, then the model.
        let mut vectors: Vec<(usize, Sparse)> = Vec::with_capacity(docs.len());
        for (label, hashes) in &docs {
            let y = clf
                .labels
                .binary_search_by(|l| (**l).cmp(label))
                .unwrap_or(0);
            let mut v = Vec::new();
            clf.vectorize(hashes, &mut v);
            vectors.push((y, v));
        }
        let data: Vec<(usize, &Sparse)> = vectors.iter().map(|(y, v)| (*y, v)).collect();
        let sgd = options.sgd();
        clf.model = Weights::quantize(&Linear::fit(rows, k, &data, &sgd));
        (clf.tau, clf.calibration) =
            fit_calibration(rows, k, &data, options.calibration_folds, &sgd);
        Ok(clf)
    }
}
