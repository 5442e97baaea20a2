//! Saved segment models: one MessagePack file, laid out like the regression
//! models' files ([`crate::models::artifact`]):
//!
//! ```text
//! { magic: "analytics-lib segment model",
//!   meta: SegmentMeta { format_version, algorithm, feature_names, k, seed, silhouette, … },
//!   payload: bytes,      // MessagePack of { scaler, centroids, profiles }
//!   checksum: u64 }      // FNV-1a 64 of the payload bytes
//! ```
//!
//! Loading reads the format version first and refuses any other, refuses a
//! truncated or altered file, checks the payload against the metadata
//! (feature list, k), and with [`SegmentModel::load_expecting`] refuses a
//! model built on another feature list than the caller's. Errors are
//! [`ModelError`]s (the same as the regression models'), so the API maps
//! both kinds of file the same way.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::models::ModelError;
use crate::models::artifact::{Artifact, ArtifactMeta, write_atomic};

use super::errors::Result;
use super::features::Scaler;
use super::model::{FORMAT_VERSION, SegmentMeta, SegmentModel};
use super::profile::SegmentProfile;

/// First field of every segment model file.
pub const MAGIC: &str = "analytics-lib segment model";

impl ArtifactMeta for SegmentMeta {
    const MAGIC: &'static str = MAGIC;
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
    const WHAT: &'static str = "segment model file";
}

/// A segment model's file; [`SegmentModel::load`] is the checked way in.
pub type SegmentFile = Artifact<SegmentMeta>;

#[derive(Serialize, Deserialize)]
struct Body {
    scaler: Scaler,
    centroids: Vec<Vec<f64>>,
    profiles: Vec<SegmentProfile>,
}

fn corrupt(path: &Path, expected: impl Into<String>, found: impl Into<String>) -> ModelError {
    ModelError::Corrupt {
        path: path.to_path_buf(),
        expected: expected.into(),
        found: found.into(),
    }
}

impl SegmentModel {
    /// The model as a file.
    pub fn to_file(&self) -> Result<SegmentFile> {
        let body = Body {
            scaler: self.scaler.clone(),
            centroids: self.centroids.clone(),
            profiles: self.profiles.clone(),
        };
        let payload =
            rmp_serde::to_vec_named(&body).map_err(|e| ModelError::Encode(e.to_string()))?;
        Ok(SegmentFile::new(self.meta.clone(), payload))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.to_file()?.to_bytes()?)
    }

    /// Save to `path` (all-or-nothing).
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(write_atomic(path, &self.to_bytes()?)?)
    }

    /// Load and check a segment model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(ModelError::io(path, "reading the model file"))?;
        Self::from_bytes(&bytes, path)
    }

    /// [`SegmentModel::load`], then refuse a model whose features are not
    /// exactly `features` (names and order).
    pub fn load_expecting(path: &Path, features: &[String]) -> Result<Self> {
        let m = Self::load(path)?;
        if m.meta.feature_names != features {
            return Err(ModelError::feature_mismatch(features, &m.meta.feature_names).into());
        }
        Ok(m)
    }

    /// Decode and check bytes; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let file = SegmentFile::checked(bytes, path)?;
        let body: Body = rmp_serde::from_slice(&file.payload.0).map_err(|e| {
            corrupt(
                path,
                "a segment model payload",
                format!("bytes that do not decode: {e}"),
            )
        })?;
        let meta = file.meta;
        if body.scaler.names != meta.feature_names {
            return Err(
                ModelError::feature_mismatch(&meta.feature_names, &body.scaler.names).into(),
            );
        }
        let d = meta.feature_names.len();
        let s = &body.scaler;
        if s.transforms.len() != d
            || s.means.len() != d
            || s.stds.len() != d
            || s.weights.len() != d
        {
            return Err(corrupt(
                path,
                format!("a scaler with {d} transforms, means, deviations and weights"),
                format!(
                    "{}, {}, {}, {}",
                    s.transforms.len(),
                    s.means.len(),
                    s.stds.len(),
                    s.weights.len()
                ),
            )
            .into());
        }
        if body.centroids.len() != meta.k
            || body.profiles.len() != meta.k
            || body.centroids.iter().any(|c| c.len() != d)
        {
            return Err(corrupt(
                path,
                format!(
                    "{} centroids of {d} values and {} profiles (k from the metadata)",
                    meta.k, meta.k
                ),
                format!(
                    "{} centroids (lengths {:?}) and {} profiles",
                    body.centroids.len(),
                    body.centroids.iter().map(Vec::len).collect::<Vec<_>>(),
                    body.profiles.len()
                ),
            )
            .into());
        }
        Ok(SegmentModel {
            meta,
            scaler: body.scaler,
            centroids: body.centroids,
            profiles: body.profiles,
        })
    }
}
