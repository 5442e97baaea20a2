//! The live segment model: the registry's live `segments` version
//! (`<models>/segments/vNNNN/segments.msgpack`, `registry::SEGMENT_FILE`),
//! and the customers' segmentation features behind `{"customer_id"}`
//! requests.
//!
//! Like [`crate::model::LiveModel`], a [`LiveSegments`] is immutable once
//! built and swapped whole (see `state.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use analytics_lib::lookup::{CustomerRows, Projection};
use analytics_lib::segments::SegmentModel;
use anyhow::Context;
use chrono::NaiveDate;

use crate::model::ServingData;

/// The segmentation features of every customer at one date, in the model's
/// feature order: a [`Projection`] of the service's [`CustomerRows`] (the
/// segmentation features are the RFM columns and shares of the customer
/// features, computed by the same function).
#[derive(Debug)]
pub struct SegmentTable {
    pub as_of: NaiveDate,
    pub categories: Vec<String>,
    pub names: Vec<String>,
    rows: Arc<CustomerRows>,
    projection: Projection,
}

impl SegmentTable {
    /// Features of every customer with a completed order before the data's
    /// reference date (the same definitions the model was fitted on), for
    /// `names`.
    pub fn new(
        data: &ServingData,
        categories: &[String],
        names: &[String],
    ) -> anyhow::Result<Self> {
        let projection = data
            .rows
            .projection(names)
            .context("while laying out the segment model's features for lookups")?;
        Ok(SegmentTable {
            as_of: data.as_of,
            categories: categories.to_vec(),
            names: names.to_vec(),
            rows: data.rows.clone(),
            projection,
        })
    }

    /// Customer `id`'s feature row, in `names` order.
    pub fn row(&self, id: &str) -> Option<Vec<f64>> {
        self.rows.row(id, &self.projection)
    }
}

/// The segment model being served.
pub struct LiveSegments {
    /// The registry version (`v0002`).
    pub version: String,
    pub file: PathBuf,
    pub model: SegmentModel,
    /// Feature rows by customer id (when the service has data).
    pub customers: Option<Arc<SegmentTable>>,
}

impl std::fmt::Debug for LiveSegments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSegments")
            .field("version", &self.version)
            .field("file", &self.file)
            .field("k", &self.model.k())
            .finish_non_exhaustive()
    }
}

impl LiveSegments {
    /// Load and check a segment model file, and compute (or reuse) the
    /// customer table when the service has data.
    pub fn load(
        path: &Path,
        version: String,
        data: Option<&ServingData>,
        reuse: Option<Arc<SegmentTable>>,
    ) -> anyhow::Result<LiveSegments> {
        let bytes =
            std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
        Self::from_bytes(&bytes, path, version, data, reuse)
    }

    /// [`LiveSegments::load`] from a file's bytes (the registry's verified
    /// bytes); `path` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        path: &Path,
        version: String,
        data: Option<&ServingData>,
        reuse: Option<Arc<SegmentTable>>,
    ) -> anyhow::Result<LiveSegments> {
        let model = SegmentModel::from_bytes(bytes, path)
            .with_context(|| format!("while loading the segment model {}", path.display()))?;
        if model.k() == 0 || model.profiles.len() < model.k() {
            anyhow::bail!(
                "{}: expected one profile per segment ({}), found {}",
                path.display(),
                model.k(),
                model.profiles.len()
            );
        }
        let names = model.feature_names().to_vec();
        let customers = match data {
            None => None,
            Some(d) => match reuse.filter(|t| {
                t.categories == model.meta.categories
                    && Arc::ptr_eq(&t.rows, &d.rows)
                    && t.names == names
            }) {
                Some(t) => Some(t),
                None => Some(Arc::new(SegmentTable::new(
                    d,
                    &model.meta.categories,
                    &names,
                )?)),
            },
        };
        Ok(LiveSegments {
            version,
            file: path.to_path_buf(),
            model,
            customers,
        })
    }

    pub fn feature_names(&self) -> &[String] {
        self.model.feature_names()
    }

    /// A customer's feature row, by name.
    pub fn customer_row(&self, id: &str) -> Option<BTreeMap<String, f64>> {
        let t = self.customers.as_ref()?;
        let row = t.row(id)?;
        Some(t.names.iter().cloned().zip(row).collect())
    }
}
