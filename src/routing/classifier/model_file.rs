//! The saved-model format (version 2; version 1 is still read), documented on [`TextClassifier`](super::TextClassifier)
//! under [Model files](super::TextClassifier#model-files).

use std::path::Path;
use std::sync::Arc;

use super::calibrate::{Calibration, MAX_POINTS};
use super::features::{FeatureMap, FeatureSpec, MAX_NGRAM};
use super::linear::Linear;
use super::weights::Weights;
use super::{TextClassifier, config};
use crate::types::Error;

const MAGIC: [u8; 8] = TextClassifier::MAGIC;
const FORMAT_VERSION: u32 = TextClassifier::FORMAT_VERSION;
/// The fixed part before the header: magic, version, header length.
const PREFIX: usize = 16;
/// The header's length (versions 1 and 2).
const HEADER: usize = 48;

/// Little-endian writer.
struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Little-endian reader over a slice whose length was checked against the header.
struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(bad(format!("truncated at byte {}", self.at)));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, Error> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, Error> {
        let bytes = self.take(n.saturating_mul(4))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn bad(what: impl std::fmt::Display) -> Error {
    config(format!("classifier model: {what}"))
}

/// The header.
struct Header {
    version: u32,
    labels: usize,
    rows: usize,
    points: usize,
    name_bytes: usize,
    examples: u64,
    features: FeatureSpec,
    unknown_idf: f32,
    tau: f32,
    abstain_below: f32,
}

impl Header {
    /// The whole file's length this header declares; `None` on overflow.
    fn file_len(&self) -> Option<usize> {
        let (k, r) = (self.labels, self.rows);
        let body = [
            k.checked_mul(4)?,           // label lengths
            self.name_bytes,             // label names
            self.points.checked_mul(8)?, // calibration points
            r.checked_mul(8)?,           // feature hashes
            r.checked_mul(4)?,           // idf
            // Version 2: a scale per row, then 1-byte weights; version 1: 4-byte weights.
            if self.version == 1 {
                0
            } else {
                r.checked_mul(4)?
            },
            k.checked_mul(4)?, // bias
            r.checked_mul(k)?
                .checked_mul(if self.version == 1 { 4 } else { 1 })?,
        ];
        body.iter()
            .try_fold(PREFIX + HEADER + 4, |acc: usize, &n| acc.checked_add(n))
    }
}

impl TextClassifier {
    /// The first 8 bytes of a model file.
    pub const MAGIC: [u8; 8] = *b"polyclf\0";

    /// The format version this build writes and reads.
    pub const FORMAT_VERSION: u32 = 2;

    /// The model in the [saved-model format](#model-files), version [`FORMAT_VERSION`](Self::FORMAT_VERSION). The
    /// same model always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (k, r) = (self.labels.len(), self.idf.len());
        let mut out = Out(Vec::with_capacity(
            PREFIX + HEADER + 16 * r + r * k + 64 * k,
        ));
        out.0.extend_from_slice(&MAGIC);
        out.u32(FORMAT_VERSION);
        out.u32(HEADER as u32);
        let names: usize = self.labels.iter().map(|l| l.len()).sum();
        out.u32(k as u32);
        out.u32(r as u32);
        out.u32(self.calibration.points.len() as u32);
        out.u32(names as u32);
        out.u64(self.examples as u64);
        let f = self.features;
        out.u8(u8::from(f.word_bigrams));
        for n in [
            f.chars.0,
            f.chars.1,
            f.unsegmented_chars.0,
            f.unsegmented_chars.1,
        ] {
            out.u8(n as u8);
        }
        out.0.extend_from_slice(&[0; 3]);
        out.f32(self.unknown_idf);
        out.f32(self.tau);
        out.f32(self.abstain_below);
        out.u32(0);
        for l in &self.labels {
            out.u32(l.len() as u32);
        }
        for l in &self.labels {
            out.0.extend_from_slice(l.as_bytes());
        }
        for &(x, y) in &self.calibration.points {
            out.f32(x);
            out.f32(y);
        }
        let mut hashes = vec![0u64; r];
        for (&h, &row) in &self.index {
            if let Some(slot) = hashes.get_mut(row as usize) {
                *slot = h;
            }
        }
        for h in hashes {
            out.u64(h);
        }
        out.f32s(&self.idf);
        out.f32s(&self.model.scales);
        out.f32s(&self.model.bias);
        out.0.extend(self.model.weights.iter().map(|&q| q as u8));
        let crc = crc32fast::hash(&out.0);
        out.u32(crc);
        out.0
    }

    /// Writes the model to `path` ([`to_bytes`](Self::to_bytes)). A file that cannot be
    /// written is a [`Config`](crate::ErrorKind::Config) error naming it.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes())
            .map_err(|e| config(format!("classifier model {}: {e}", path.display())).with_source(e))
    }

    /// Reads a model written by [`save`](Self::save). Errors name the file.
    ///
    /// Fails with a [`Config`](crate::ErrorKind::Config) error, never a panic, for a file
    /// that cannot be read, is not a model file, has another format version, is truncated
    /// or has bytes past its end, fails its checksum, or holds inconsistent values.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            config(format!("classifier model {}: {e}", path.display())).with_source(e)
        })?;
        Self::from_bytes(&bytes).map_err(|e| config(format!("{}: {}", path.display(), e.message())))
    }

    /// Reads a model from bytes written by [`to_bytes`](Self::to_bytes). Allocations are
    /// bounded by `bytes.len()`: the sizes the header declares must add up to the length
    /// before anything is read. Errors as [`load`](Self::load).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = In { bytes, at: 0 };
        if bytes.len() < PREFIX || r.array::<8>()? != MAGIC {
            return Err(bad("not a polyrelay classifier model (bad magic bytes)"));
        }
        let version = r.u32()?;
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(bad(format!(
                "format version {version}, this build reads versions 1 to {FORMAT_VERSION}"
            )));
        }
        let header_len = r.u32()?;
        if header_len as usize != HEADER {
            return Err(bad(format!(
                "header of {header_len} bytes, version {version} has {HEADER}"
            )));
        }
        if bytes.len() < PREFIX + HEADER + 4 {
            return Err(bad(format!("truncated: {} bytes", bytes.len())));
        }
        let h = Header {
            version,
            labels: r.u32()? as usize,
            rows: r.u32()? as usize,
            points: r.u32()? as usize,
            name_bytes: r.u32()? as usize,
            examples: r.u64()?,
            features: {
                let bigrams = r.u8()?;
                let n = [r.u8()?, r.u8()?, r.u8()?, r.u8()?].map(usize::from);
                r.take(3)?;
                if bigrams > 1 || n[0] > n[1] || n[2] > n[3] || n[1] > MAX_NGRAM || n[3] > MAX_NGRAM
                {
                    return Err(bad("invalid feature settings in the header"));
                }
                FeatureSpec {
                    word_bigrams: bigrams == 1,
                    chars: (n[0], n[1]),
                    unsegmented_chars: (n[2], n[3]),
                }
            },
            unknown_idf: r.f32()?,
            tau: r.f32()?,
            abstain_below: r.f32()?,
        };
        r.u32()?;
        match h.file_len() {
            Some(n) if n == bytes.len() => {}
            Some(n) if n > bytes.len() => {
                return Err(bad(format!(
                    "truncated: {} bytes, the header declares {n}",
                    bytes.len()
                )));
            }
            Some(n) => {
                return Err(bad(format!(
                    "{} bytes past the end the header declares ({n})",
                    bytes.len() - n
                )));
            }
            None => return Err(bad("the header declares an impossible size")),
        }
        let body_end = bytes.len() - 4;
        let stored = u32::from_le_bytes([
            bytes[body_end],
            bytes[body_end + 1],
            bytes[body_end + 2],
            bytes[body_end + 3],
        ]);
        let computed = crc32fast::hash(&bytes[..body_end]);
        if stored != computed {
            return Err(bad(format!(
                "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is \
                 corrupt"
            )));
        }
        if h.labels < 2 || h.points > MAX_POINTS {
            return Err(bad(format!(
                "{} labels and {} calibration points",
                h.labels, h.points
            )));
        }
        let in_unit = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        if !(h.unknown_idf.is_finite() && h.tau.is_finite() && in_unit(h.abstain_below)) {
            return Err(bad("invalid numbers in the header"));
        }
        let mut lens = Vec::with_capacity(h.labels);
        for _ in 0..h.labels {
            lens.push(r.u32()? as usize);
        }
        let mut labels: Vec<Arc<str>> = Vec::with_capacity(h.labels);
        for len in lens {
            let name =
                std::str::from_utf8(r.take(len)?).map_err(|_| bad("a label is not UTF-8"))?;
            if name.trim().is_empty() || labels.last().is_some_and(|l| **l >= *name) {
                return Err(bad("labels are not unique, sorted and non-empty"));
            }
            labels.push(Arc::from(name));
        }
        let mut points = Vec::with_capacity(h.points);
        for _ in 0..h.points {
            points.push((r.f32()?, r.f32()?));
        }
        let calibration = Calibration { points };
        if !calibration.is_valid() {
            return Err(bad("invalid calibration points"));
        }
        let hashes = r.take(h.rows.saturating_mul(8))?;
        let mut index = FeatureMap::default();
        index.reserve(h.rows);
        let mut last = None;
        for (row, c) in hashes.chunks_exact(8).enumerate() {
            let hash = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            if last.is_some_and(|l| l >= hash) {
                return Err(bad("feature hashes are not strictly ascending"));
            }
            last = Some(hash);
            index.insert(hash, row as u32);
        }
        let idf = r.f32s(h.rows)?;
        let model = if h.version == 1 {
            let bias = r.f32s(h.labels)?;
            let weights = r.f32s(h.rows.saturating_mul(h.labels))?;
            if !idf
                .iter()
                .chain(&bias)
                .chain(&weights)
                .all(|v| v.is_finite())
            {
                return Err(bad("a weight is not a finite number"));
            }
            // Version 1 kept f32 weights: quantised as a version-2 model's are.
            Weights::quantize(&Linear {
                labels: h.labels,
                weights,
                bias,
            })
        } else {
            let scales = r.f32s(h.rows)?;
            let bias = r.f32s(h.labels)?;
            let weights: Vec<i8> = r
                .take(h.rows.saturating_mul(h.labels))?
                .iter()
                .map(|&b| b as i8)
                .collect();
            if !idf
                .iter()
                .chain(&bias)
                .chain(&scales)
                .all(|v| v.is_finite())
                || scales.iter().any(|&s| s < 0.0)
            {
                return Err(bad("a weight is not a finite number"));
            }
            Weights {
                labels: h.labels,
                scales,
                weights,
                bias,
            }
        };
        Ok(TextClassifier {
            features: h.features,
            index,
            idf,
            unknown_idf: h.unknown_idf,
            model,
            labels,
            tau: h.tau,
            calibration,
            abstain_below: h.abstain_below,
            examples: usize::try_from(h.examples).unwrap_or(usize::MAX),
        })
    }
}
