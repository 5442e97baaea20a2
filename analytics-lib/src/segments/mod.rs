//! Customer segmentation (feature `segments`): who the customers are, by
//! purchase behaviour.
//!
//! * [`SegmentFeatures`] — RFM, average ticket and category shares per
//!   customer at `as_of`; [`Scaler`] — log1p + standardisation, saved with
//!   the model;
//! * [`KMeansParams`] — KMeans (linfa-clustering) over a range of k, chosen
//!   by silhouette, with the elbow curve; [`kmeans_fixed`] — the benchmark's
//!   k = 5 path;
//! * [`DbscanParams`] — DBSCAN with `eps` from the k-distance curve; noise
//!   stays noise;
//! * [`naming`] — distinct segment names from documented rules on RFM
//!   quantiles (value, recency, frequency, ticket tiers);
//!   [`SegmentProfile`] — size, shares, RFM statistics, top categories;
//! * [`MigrationMatrix`] — who moved between segments from `as_of − 90 d`
//!   to `as_of`; [`stability`] — adjusted Rand index of two models on the
//!   same customers (the retrain job's champion and challenger);
//! * [`views`] — PCA and t-SNE projections and scatter charts;
//! * [`SegmentModel`] — save / load (MessagePack, checked) and
//!   [`SegmentModel::assign`] for the API.
//!
//! ```no_run
//! use analytics_lib::{segments, source::Source};
//! let sales = Source::parquet("data/curated").prepare()?.sales;
//! let (features, seg) = segments::segment_customers(&sales, None, &Default::default())?;
//! for p in &seg.model.profiles {
//!     println!("{}: {} customers", p.name, p.size);
//! }
//! seg.model.save(std::path::Path::new("models/segments.msgpack"))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifact;
pub mod dbscan;
mod errors;
pub mod features;
pub mod grid;
pub mod kmeans;
pub mod migration;
mod model;
pub mod naming;
pub mod profile;
pub mod views;

/// The array crate of the segment matrices (`Segmentation::scaled`,
/// projections), re-exported so notebooks can slice them without adding it.
pub use ndarray;

pub use artifact::{MAGIC, SegmentFile};
pub use dbscan::{
    DbscanFit, DbscanParams, EpsSuggestion, dbscan_grid, dbscan_linfa, dbscan_profiles, suggest_eps,
};
pub use errors::{Result, SegmentError};
pub use features::{
    BENCH_FEATURES, RFM_FEATURES, Scaler, SegmentFeatures, Transform, segment_feature_names,
};
pub use kmeans::{
    FixedKMeans, FixedKMeansResult, KMeansFit, KMeansParams, KMeansSearch, KScore, Lloyd,
    adjusted_rand_index, fit_k, kmeans_fixed, kmeans_fixed_input, kmeans_fixed_on, lloyd,
    lloyd_linfa, silhouette_score,
};
pub use migration::{MIGRATION_DAYS, MigrationMatrix, Stability, stability};
pub use model::{
    Assignment, FORMAT_VERSION, ProfileSummary, SegmentMeta, SegmentModel, SegmentParams,
    Segmentation, fit_segments, segment_customers, segment_fingerprint,
};
pub use naming::{
    Naming, RfmPosition, RfmTiers, SegmentStats, Tier, TierCuts, base_name, base_of,
    marketing_action, name_groups, names_from_stats,
};
pub use profile::{CategoryShare, NOISE_ID, SegmentProfile, Stat, profiles_frame};
pub use views::{Projection, TsneParams};
