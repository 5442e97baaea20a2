//! Data drift: how far new features have moved from a model's training data.
//!
//! Every saved version carries a `training_profile.json`
//! ([`TrainingProfile`]): per feature, the bin edges (the deciles of the
//! training values, duplicates removed) and the share of training rows in
//! each bin. New data is binned on the same edges and compared with the
//! **population stability index**
//!
//! ```text
//! PSI = Σ_bins (new_share − train_share) · ln(new_share / train_share)
//! ```
//!
//! with every share floored at [`PSI_FLOOR`] (an empty bin would make the
//! logarithm infinite). Bands, as commonly used in credit scoring:
//! `< 0.1` stable, `0.1 – 0.25` moderate, `> 0.25` drifted. Identical data
//! gives exactly 0.
//!
//! Bins are `(−∞, e₀], (e₀, e₁], …, (e_last, +∞)`: a feature with many ties
//! (counts, shares that are often 0) keeps fewer, wider bins rather than
//! empty duplicates.

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;

/// Shares below this count as this in the PSI.
pub const PSI_FLOOR: f64 = 1e-4;
/// PSI below this: stable.
pub const PSI_MODERATE: f64 = 0.1;
/// PSI above this: drifted.
pub const PSI_DRIFTED: f64 = 0.25;
/// The profile file in a version folder.
pub use crate::registry::PROFILE_FILE;

/// One feature's training distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    /// Inner bin edges: distinct deciles of the training values, ascending.
    pub edges: Vec<f64>,
    /// Share of training rows per bin (`edges.len() + 1` bins, sum 1).
    pub proportions: Vec<f64>,
}

/// The training distribution of every feature of a model version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingProfile {
    /// How the edges were chosen: `deciles`.
    pub binning: String,
    /// Training rows profiled.
    pub rows: usize,
    pub features: Vec<FeatureProfile>,
}

/// PSI band of a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftBand {
    /// PSI < 0.1.
    Stable,
    /// 0.1 ≤ PSI ≤ 0.25.
    Moderate,
    /// PSI > 0.25.
    Drifted,
}

impl DriftBand {
    pub fn of(psi: f64) -> Self {
        if psi > PSI_DRIFTED {
            DriftBand::Drifted
        } else if psi >= PSI_MODERATE {
            DriftBand::Moderate
        } else {
            DriftBand::Stable
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DriftBand::Stable => "stable",
            DriftBand::Moderate => "moderate",
            DriftBand::Drifted => "drifted",
        }
    }
}

/// One feature's drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: f64,
    pub band: DriftBand,
}

/// New features against a version's training profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The version whose profile is the reference (`v0003`).
    pub reference_version: String,
    pub reference_rows: usize,
    pub new_rows: usize,
    /// Features present on both sides, in the new data's order.
    pub features: Vec<FeatureDrift>,
    /// Share of the compared features in the `drifted` band.
    pub share_drifted: f64,
    /// Share in the `moderate` band.
    pub share_moderate: f64,
    /// Features only in the reference (e.g. a category no longer sold).
    pub missing_features: Vec<String>,
    /// Features only in the new data (e.g. a new category).
    pub new_features: Vec<String>,
}

impl DriftReport {
    /// The drifted features' names.
    pub fn drifted(&self) -> Vec<&str> {
        self.features
            .iter()
            .filter(|f| f.band == DriftBand::Drifted)
            .map(|f| f.feature.as_str())
            .collect()
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureDrift> {
        self.features.iter().find(|f| f.feature == name)
    }
}

/// Bin index of `v` for inner `edges`: `(−∞, e₀]` is 0, `(e_last, ∞)` is `edges.len()`.
fn bin(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|e| *e < v)
}

fn shares(edges: &[f64], values: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    let mut n = 0usize;
    for &v in values.iter().filter(|v| v.is_finite()) {
        counts[bin(edges, v)] += 1;
        n += 1;
    }
    counts
        .into_iter()
        .map(|c| if n > 0 { c as f64 / n as f64 } else { 0.0 })
        .collect()
}

impl FeatureProfile {
    /// Deciles of `values` (non-finite values ignored) and the shares per bin.
    pub fn fit(name: &str, values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::with_capacity(9);
        if !sorted.is_empty() {
            let n = sorted.len();
            for q in 1..10 {
                // Nearest rank on the sorted values.
                let e = sorted[(q * (n - 1)) / 10];
                if edges.last().is_none_or(|last| e > *last) {
                    edges.push(e);
                }
            }
        }
        FeatureProfile {
            name: name.to_string(),
            proportions: shares(&edges, &sorted),
            edges,
        }
    }

    /// Population stability index of `values` against this profile.
    pub fn psi(&self, values: &[f64]) -> f64 {
        let new = shares(&self.edges, values);
        self.proportions
            .iter()
            .zip(&new)
            .map(|(&p, &q)| {
                let (p, q) = (p.max(PSI_FLOOR), q.max(PSI_FLOOR));
                (q - p) * (q / p).ln()
            })
            .sum::<f64>()
            .max(0.0)
    }
}

/// The columns of a row-major matrix.
fn columns(x: &FeatureMatrix) -> Vec<Vec<f64>> {
    let c = x.n_cols();
    let mut cols = vec![Vec::with_capacity(x.n_rows()); c];
    for row in x.values().chunks_exact(c.max(1)) {
        for (j, v) in row.iter().enumerate() {
            cols[j].push(*v);
        }
    }
    cols
}

impl TrainingProfile {
    /// Profile every column of `x`.
    pub fn of_matrix(x: &FeatureMatrix) -> Self {
        let cols = columns(x);
        TrainingProfile {
            binning: "deciles".into(),
            rows: x.n_rows(),
            features: x
                .names()
                .iter()
                .zip(&cols)
                .map(|(n, c)| FeatureProfile::fit(n, c))
                .collect(),
        }
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureProfile> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Compare the columns of `x` with this profile (`reference_version`
    /// names the version the profile belongs to, for the report).
    pub fn compare(&self, reference_version: &str, x: &FeatureMatrix) -> DriftReport {
        let cols = columns(x);
        let mut features = Vec::new();
        let mut new_features = Vec::new();
        for (name, values) in x.names().iter().zip(&cols) {
            match self.feature(name) {
                Some(p) => {
                    let psi = p.psi(values);
                    features.push(FeatureDrift {
                        feature: name.clone(),
                        psi,
                        band: DriftBand::of(psi),
                    });
                }
                None => new_features.push(name.clone()),
            }
        }
        let missing_features = self
            .features
            .iter()
            .filter(|f| !x.names().contains(&f.name))
            .map(|f| f.name.clone())
            .collect();
        let share = |band: DriftBand| {
            if features.is_empty() {
                0.0
            } else {
                features.iter().filter(|f| f.band == band).count() as f64 / features.len() as f64
            }
        };
        DriftReport {
            reference_version: reference_version.to_string(),
            reference_rows: self.rows,
            new_rows: x.n_rows(),
            share_drifted: share(DriftBand::Drifted),
            share_moderate: share(DriftBand::Moderate),
            features,
            missing_features,
            new_features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(cols: &[(&str, Vec<f64>)]) -> FeatureMatrix {
        let n = cols[0].1.len();
        let mut values = Vec::new();
        for i in 0..n {
            for (_, c) in cols {
                values.push(c[i]);
            }
        }
        FeatureMatrix::new(cols.iter().map(|(n, _)| n.to_string()).collect(), values)
            .expect("matrix")
    }

    #[test]
    fn deciles_with_ties_keep_distinct_edges() {
        let mut v = vec![0.0; 70];
        v.extend((1..=30).map(f64::from));
        let p = FeatureProfile::fit("share", &v);
        assert!(p.edges.windows(2).all(|w| w[0] < w[1]), "{:?}", p.edges);
        assert_eq!(p.edges[0], 0.0);
        assert_eq!(p.proportions.len(), p.edges.len() + 1);
        assert!((p.proportions.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p.proportions[0] - 0.7).abs() < 1e-12);
    }

    #[test]
    fn identical_is_zero_and_a_shift_is_flagged() {
        let a: Vec<f64> = (0..1000).map(|i| f64::from(i % 97)).collect();
        let b: Vec<f64> = (0..1000).map(|i| f64::from(i * 7 % 31)).collect();
        let x = matrix(&[("a", a.clone()), ("b", b.clone())]);
        let prof = TrainingProfile::of_matrix(&x);
        let same = prof.compare("v0001", &x);
        assert!(same.features.iter().all(|f| f.psi == 0.0), "{same:?}");
        assert_eq!(same.share_drifted, 0.0);
        let shifted: Vec<f64> = a.iter().map(|v| v + 40.0).collect();
        let d = prof.compare("v0001", &matrix(&[("a", shifted), ("b", b)]));
        assert_eq!(d.feature("a").expect("a").band, DriftBand::Drifted);
        assert_eq!(d.feature("b").expect("b").band, DriftBand::Stable);
        assert_eq!(d.share_drifted, 0.5);
        assert_eq!(d.drifted(), vec!["a"]);
    }
}
