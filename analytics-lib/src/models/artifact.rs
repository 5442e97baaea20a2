//! Saved models: one MessagePack file per model, with its provenance. The
//! file format is generic ([`Artifact`]): the regression models here and
//! the segment models (`segments/artifact.rs`) differ only by their
//! metadata type and payload.
//!
//! A file is a MessagePack map (rmp-serde, field names included):
//!
//! ```text
//! { magic: "analytics-lib model",       // ArtifactMeta::MAGIC
//!   meta: ModelMeta { format_version, kind, hyperparameters, feature_names, categories, … },
//!   payload: bytes,          // the fitted model (MessagePack; XGBoost's own UBJSON inside)
//!   checksum: u64 }          // FNV-1a 64 of the payload bytes
//! ```
//!
//! Loading reads the format version first and refuses any other version,
//! refuses a truncated or corrupted file, checks the model against its own
//! feature list, and (with [`TrainedModel::load_expecting`]) refuses a model
//! trained on other features than the caller's. Saving writes a temporary
//! file and renames it, so a model file is complete or absent.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::features::FeatureMatrix;

use super::errors::{ModelError, Result};
use super::intervals::ConformalIntervals;
use super::metrics::Metrics;
use super::regressor::{Hyperparameters, ModelKind, PayloadError, Regressor};

/// The version of the file layout this library writes and reads.
/// 2: the random forest is saved as its own flat trees (no longer smartcore's).
pub const FORMAT_VERSION: u32 = 2;
/// First field of every model file.
pub const MAGIC: &str = "analytics-lib model";
/// The library that wrote a model.
pub const CODE_VERSION: &str = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));

/// Provenance and contract of a saved model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format_version: u32,
    pub kind: ModelKind,
    pub hyperparameters: Hyperparameters,
    /// The model's input columns, in order.
    pub feature_names: Vec<String>,
    /// The sorted category list behind the `share_*` features.
    pub categories: Vec<String>,
    /// Cutoff of the training features (target: the 90 days from it).
    pub train_cutoff: NaiveDate,
    pub horizon_days: i64,
    pub train_rows: usize,
    /// `fnv1a64:<hex>` of the training and test matrices and targets.
    pub data_fingerprint: String,
    /// Scores by split: `validation`, `test`, and the naive baseline's
    /// `baseline_test`.
    pub metrics: BTreeMap<String, Metrics>,
    /// The prediction intervals, calibrated on the validation split's
    /// out-of-time residuals, with their coverage on the test cutoff.
    /// Absent in models saved before intervals existed.
    #[serde(default)]
    pub intervals: Option<ConformalIntervals>,
    pub code_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// A fitted model with its metadata: what is saved and loaded.
#[derive(Debug)]
pub struct TrainedModel {
    pub meta: ModelMeta,
    pub model: Regressor,
}

/// Bytes stored as one MessagePack `bin` (not an array of numbers).
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                v: Vec<u8>,
            ) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Bytes, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// FNV-1a, 64 bits: a stable, dependency-free fingerprint (not a MAC).
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn write_f64s(&mut self, values: &[f64]) {
        for v in values {
            self.write(&v.to_bits().to_le_bytes());
        }
    }
    pub fn write_str(&mut self, s: &str) {
        self.write(&(s.len() as u64).to_le_bytes());
        self.write(s.as_bytes());
    }
    pub fn finish(self) -> u64 {
        self.0
    }
}

pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::default();
    h.write(bytes);
    h.finish()
}

/// What a kind of artifact declares in its file: the marker it starts
/// with, the layout version its metadata carries, and a name for errors.
pub trait ArtifactMeta: Serialize + serde::de::DeserializeOwned + Clone {
    /// First field of every file of this kind.
    const MAGIC: &'static str;
    /// The layout version this library writes and reads.
    const FORMAT_VERSION: u32;
    /// The file kind in errors: "model file", "segment model file".
    const WHAT: &'static str;
}

impl ArtifactMeta for ModelMeta {
    const MAGIC: &'static str = MAGIC;
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
    const WHAT: &'static str = "model file";
}

/// An artifact file as stored: marker, metadata, payload and its checksum.
/// Public so that tools (and tests) can inspect or rewrite one;
/// [`Artifact::checked`] (behind [`TrainedModel::load`] and
/// `SegmentModel::load`) is the checked way in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "M: ArtifactMeta")]
pub struct Artifact<M> {
    pub magic: String,
    pub meta: M,
    pub payload: Bytes,
    pub checksum: u64,
}

/// A regression model's file.
pub type ModelFile = Artifact<ModelMeta>;

/// Just enough of a file to know its layout version.
#[derive(Deserialize)]
struct Probe {
    magic: String,
    meta: MetaProbe,
}
#[derive(Deserialize)]
struct MetaProbe {
    format_version: u32,
}

impl<M: ArtifactMeta> Artifact<M> {
    /// A file of `meta` around `payload`, with the marker and checksum.
    pub fn new(meta: M, payload: Vec<u8>) -> Self {
        Artifact {
            magic: M::MAGIC.to_string(),
            meta,
            checksum: checksum(&payload),
            payload: Bytes(payload),
        }
    }

    fn decode_error(path: &Path, bytes: usize, e: rmp_serde::decode::Error) -> ModelError {
        decode_error_for(
            &format!(
                "a MessagePack {} ({}, format version {})",
                M::WHAT,
                M::MAGIC,
                M::FORMAT_VERSION
            ),
            path,
            bytes,
            e,
        )
    }

    /// Decode a file's bytes without checking the version or the checksum.
    /// `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        rmp_serde::from_slice(bytes).map_err(|e| Self::decode_error(path, bytes.len(), e))
    }

    /// Decode and check the marker, the format version (read first, so a
    /// file of another version is named as such) and the payload's checksum.
    pub fn checked(bytes: &[u8], path: &Path) -> Result<Self> {
        let probe: Probe =
            rmp_serde::from_slice(bytes).map_err(|e| Self::decode_error(path, bytes.len(), e))?;
        if probe.magic != M::MAGIC {
            return Err(ModelError::Corrupt {
                path: path.to_path_buf(),
                expected: format!("a file starting with the marker `{}`", M::MAGIC),
                found: format!("`{}`", probe.magic.chars().take(60).collect::<String>()),
            });
        }
        if probe.meta.format_version != M::FORMAT_VERSION {
            return Err(ModelError::FormatVersion {
                path: path.to_path_buf(),
                expected: M::FORMAT_VERSION,
                found: probe.meta.format_version,
            });
        }
        let file = Self::from_bytes(bytes, path)?;
        let sum = checksum(&file.payload.0);
        if sum != file.checksum {
            return Err(ModelError::Corrupt {
                path: path.to_path_buf(),
                expected: format!("a payload with checksum {:016x}", file.checksum),
                found: format!("checksum {sum:016x}: the model bytes were altered"),
            });
        }
        Ok(file)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(self).map_err(|e| ModelError::Encode(e.to_string()))
    }

    /// Read and decode a file, unchecked (see [`Artifact::checked`]).
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(ModelError::io(path, "reading the model file"))?;
        Self::from_bytes(&bytes, path)
    }

    /// Write all-or-nothing: a temporary file in the same folder, then rename.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }
}

/// A decode failure as a clear error: truncated (the file ends early) or
/// corrupt (`what` names the file kind expected, e.g. "a MessagePack model file").
fn decode_error_for(
    what: &str,
    path: &Path,
    bytes: usize,
    e: rmp_serde::decode::Error,
) -> ModelError {
    use rmp_serde::decode::Error as E;
    let eof = match &e {
        E::InvalidMarkerRead(io) | E::InvalidDataRead(io) => {
            io.kind() == std::io::ErrorKind::UnexpectedEof
        }
        _ => false,
    };
    if eof {
        ModelError::Truncated {
            path: path.to_path_buf(),
            bytes,
            cause: e,
        }
    } else {
        ModelError::Corrupt {
            path: path.to_path_buf(),
            expected: what.to_string(),
            found: format!("{bytes} bytes that do not decode: {e}"),
        }
    }
}

/// Write all-or-nothing ([`crate::atomic::write`]).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write(path, bytes).map_err(|e| ModelError::Io {
        path: e.path,
        action: e.action,
        source: e.source,
    })
}

impl TrainedModel {
    pub fn kind(&self) -> ModelKind {
        self.model.kind()
    }

    /// Predict; `x` must have exactly the model's features, in order.
    pub fn predict(&self, x: &FeatureMatrix) -> Result<Vec<f64>> {
        if x.names() != self.meta.feature_names.as_slice() {
            return Err(ModelError::feature_mismatch(
                &self.meta.feature_names,
                x.names(),
            ));
        }
        self.model.predict(x)
    }

    /// The model as an artifact file.
    pub fn to_file(&self) -> Result<ModelFile> {
        Ok(ModelFile::new(self.meta.clone(), self.model.to_payload()?))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_file()?.to_bytes()
    }

    /// Save to `path` (all-or-nothing).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.to_file()?.write(path)
    }

    /// Load and check a model file: magic, format version, completeness,
    /// checksum, and the model against its own feature list.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(ModelError::io(path, "reading the model file"))?;
        Self::from_bytes(&bytes, path)
    }

    /// [`TrainedModel::load`], then refuse a model whose features are not
    /// exactly `features` (names and order).
    pub fn load_expecting(path: &Path, features: &[String]) -> Result<Self> {
        let m = Self::load(path)?;
        if m.meta.feature_names != features {
            return Err(ModelError::feature_mismatch(
                features,
                &m.meta.feature_names,
            ));
        }
        Ok(m)
    }

    /// Decode and check bytes; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let file = ModelFile::checked(bytes, path)?;
        let model = Regressor::from_payload(&file.payload.0, &file.meta.feature_names).map_err(
            |e| match e {
                PayloadError::Decode(e) => ModelError::Corrupt {
                    path: path.to_path_buf(),
                    expected: format!("a {} model payload", file.meta.kind),
                    found: format!("bytes that do not decode: {e}"),
                },
                PayloadError::Invalid(e) => e,
            },
        )?;
        if model.kind() != file.meta.kind {
            return Err(ModelError::Corrupt {
                path: path.to_path_buf(),
                expected: format!("a {} model (from the metadata)", file.meta.kind),
                found: format!("a {} model", model.kind()),
            });
        }
        if let Some(iv) = &file.meta.intervals {
            iv.validate().map_err(|e| ModelError::Corrupt {
                path: path.to_path_buf(),
                expected: "valid prediction intervals in the metadata".into(),
                found: e.to_string(),
            })?;
        }
        if file.meta.hyperparameters.kind() != file.meta.kind {
            return Err(ModelError::Corrupt {
                path: path.to_path_buf(),
                expected: format!("{} hyperparameters", file.meta.kind),
                found: format!("{} hyperparameters", file.meta.hyperparameters.kind()),
            });
        }
        Ok(TrainedModel {
            meta: file.meta,
            model,
        })
    }
}
