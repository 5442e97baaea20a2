//! Who moved between segments, and how much two segment models agree.
//!
//! * [`MigrationMatrix`] — one model applied to the customers at two dates
//!   (by default `as_of − 90 d` and `as_of`): `counts[i][j]` customers were
//!   in segment `i` at the earlier date and are in segment `j` now ("who
//!   moved from Champions to At risk"). Each row adds up to the earlier
//!   segment's size (with `gone`, the customers of the earlier date missing
//!   from the later one: 0 when both dates read the same data, since a
//!   customer with an order before the earlier date has one before the
//!   later). Customers whose first order falls between the two dates are
//!   counted apart, per destination segment (`new_customers`).
//! * [`Stability`] — two models (the retrain job's champion and challenger)
//!   applied to the same customers: the adjusted Rand index of their
//!   assignments (1 = the same grouping whatever the ids or names; about 0 =
//!   no more agreement than chance).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::features::FeatureData;

use super::errors::{Result, SegmentError};
use super::features::SegmentFeatures;
use super::kmeans::adjusted_rand_index;
use super::model::SegmentModel;

/// Days between the two snapshots of the default migration matrix.
pub const MIGRATION_DAYS: i64 = 90;

/// Customers moving between the segments of one model from one date to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrationMatrix {
    /// The earlier date (rows).
    pub from: NaiveDate,
    /// The later date (columns).
    pub to: NaiveDate,
    /// Segment names in id order: the rows and the columns.
    pub segments: Vec<String>,
    /// `counts[i][j]`: in segment `i` at `from`, in segment `j` at `to`.
    pub counts: Vec<Vec<u64>>,
    /// `counts[i][j] / from_sizes[i]` (0 for an empty row).
    pub row_shares: Vec<Vec<f64>>,
    /// Customers per segment at `from` (each row's total).
    pub from_sizes: Vec<u64>,
    /// Customers per segment at `to`, new customers included.
    pub to_sizes: Vec<u64>,
    /// Per segment at `to`: customers with no completed order before `from`.
    pub new_customers: Vec<u64>,
    /// Per segment at `from`: customers not found at `to`.
    pub gone: Vec<u64>,
}

fn segment_ids(model: &SegmentModel, features: &SegmentFeatures) -> Result<Vec<usize>> {
    Ok(model
        .assign_features(features)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// Pairs of row indices of the same customer id, plus the rows of `a` and
/// of `b` with no partner.
fn join(a: &[String], b: &[String]) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let index: std::collections::HashMap<&str, usize> = b
        .iter()
        .enumerate()
        .map(|(j, id)| (id.as_str(), j))
        .collect();
    let mut matched = vec![false; b.len()];
    let (mut both, mut only_a) = (Vec::new(), Vec::new());
    for (i, id) in a.iter().enumerate() {
        match index.get(id.as_str()) {
            Some(&j) => {
                both.push((i, j));
                matched[j] = true;
            }
            None => only_a.push(i),
        }
    }
    let only_b = (0..b.len()).filter(|&j| !matched[j]).collect();
    (both, only_a, only_b)
}

fn check_unique(f: &SegmentFeatures, what: &'static str) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(f.customer_ids.len());
    if let Some(dup) = f.customer_ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(SegmentError::input(
            what,
            "one row per customer id",
            format!("customer `{dup}` twice"),
        ));
    }
    Ok(())
}

impl MigrationMatrix {
    /// Apply `model` to the customers of `before` and of `after` (features
    /// at two dates, with the model's features) and count the moves.
    pub fn between(
        model: &SegmentModel,
        before: &SegmentFeatures,
        after: &SegmentFeatures,
    ) -> Result<Self> {
        check_unique(before, "earlier customers")?;
        check_unique(after, "later customers")?;
        if before.as_of > after.as_of {
            return Err(SegmentError::input(
                "migration dates",
                "the earlier snapshot first",
                format!("{} after {}", before.as_of, after.as_of),
            ));
        }
        let k = model.k();
        let a = segment_ids(model, before)?;
        let b = segment_ids(model, after)?;
        let (both, only_before, only_after) = join(&before.customer_ids, &after.customer_ids);
        let mut counts = vec![vec![0u64; k]; k];
        let (mut from_sizes, mut to_sizes) = (vec![0u64; k], vec![0u64; k]);
        let (mut new_customers, mut gone) = (vec![0u64; k], vec![0u64; k]);
        for &s in &a {
            from_sizes[s] += 1;
        }
        for &s in &b {
            to_sizes[s] += 1;
        }
        for (i, j) in both {
            counts[a[i]][b[j]] += 1;
        }
        for i in only_before {
            gone[a[i]] += 1;
        }
        for j in only_after {
            new_customers[b[j]] += 1;
        }
        let row_shares = counts
            .iter()
            .zip(&from_sizes)
            .map(|(row, &n)| {
                row.iter()
                    .map(|&c| if n > 0 { c as f64 / n as f64 } else { 0.0 })
                    .collect()
            })
            .collect();
        Ok(MigrationMatrix {
            from: before.as_of,
            to: after.as_of,
            segments: model.names(),
            counts,
            row_shares,
            from_sizes,
            to_sizes,
            new_customers,
            gone,
        })
    }

    /// The matrix of `model` between `as_of − days` and `as_of` on `data`
    /// (features computed with the model's own category list).
    pub fn compute<D: FeatureData + ?Sized>(
        model: &SegmentModel,
        data: &D,
        as_of: NaiveDate,
        days: i64,
    ) -> Result<Self> {
        if days <= 0 {
            return Err(SegmentError::input(
                "migration window",
                "a positive number of days",
                days.to_string(),
            ));
        }
        let cats = Some(model.meta.categories.as_slice());
        let before =
            SegmentFeatures::compute(data, Some(as_of - chrono::Duration::days(days)), cats)?;
        let after = SegmentFeatures::compute(data, Some(as_of), cats)?;
        Self::between(model, &before, &after)
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.segments.iter().position(|s| s == name).ok_or_else(|| {
            SegmentError::input(
                "segment name",
                format!("one of [{}]", self.segments.join(", ")),
                name.to_string(),
            )
        })
    }

    /// Customers in `from` at the earlier date and in `to` at the later one.
    pub fn moved(&self, from: &str, to: &str) -> Result<u64> {
        Ok(self.counts[self.index(from)?][self.index(to)?])
    }

    /// Share of the earlier customers still in the same segment.
    pub fn stayed_share(&self) -> f64 {
        let total: u64 = self.from_sizes.iter().sum();
        let stayed: u64 = (0..self.segments.len()).map(|i| self.counts[i][i]).sum();
        if total > 0 {
            stayed as f64 / total as f64
        } else {
            0.0
        }
    }

    /// The matrix as a table for people: one row per earlier segment, its
    /// size, then the share of it in each later segment (and `gone`), and a
    /// last row with the new customers per later segment.
    pub fn frame(&self) -> Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let k = self.segments.len();
        let err = |e: PolarsError| SegmentError::input("migration table", "a table", e.to_string());
        let mut first: Vec<String> = self.segments.clone();
        first.push("new customers".into());
        let mut sizes: Vec<u64> = self.from_sizes.clone();
        sizes.push(self.new_customers.iter().sum());
        let mut cols = vec![
            Column::new(format!("segment on {}", self.from).into(), first),
            Column::new("customers".into(), sizes),
        ];
        let new_total: u64 = self.new_customers.iter().sum();
        for j in 0..k {
            let mut v: Vec<f64> = (0..k).map(|i| self.row_shares[i][j]).collect();
            v.push(if new_total > 0 {
                self.new_customers[j] as f64 / new_total as f64
            } else {
                0.0
            });
            cols.push(Column::new(format!("→ {}", self.segments[j]).into(), v));
        }
        if self.gone.iter().any(|&g| g > 0) {
            let mut v: Vec<f64> = (0..k)
                .map(|i| {
                    if self.from_sizes[i] > 0 {
                        self.gone[i] as f64 / self.from_sizes[i] as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            v.push(0.0);
            cols.push(Column::new("→ gone".into(), v));
        }
        DataFrame::new(k + 1, cols).map_err(err)
    }

    /// The matrix as text: counts with the row share, one line per earlier segment.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let w = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, n)| format!("[{i}] {n}").chars().count())
            .max()
            .unwrap_or(8)
            .max(13);
        let _ = writeln!(
            s,
            "  from {} (rows) to {} (columns), customers and share of the row; {} stayed",
            crate::locale::date(self.from),
            crate::locale::date(self.to),
            crate::locale::percent(self.stayed_share())
        );
        for (j, name) in self.segments.iter().enumerate() {
            let _ = writeln!(s, "  [{j}] {name}");
        }
        let mut header = format!("  {:<w$} {:>9}", "", "customers");
        for j in 0..self.segments.len() {
            let _ = write!(header, " {:>15}", format!("→ [{j}]"));
        }
        let _ = writeln!(s, "{header}");
        for (i, name) in self.segments.iter().enumerate() {
            let mut line = format!(
                "  {:<w$} {:>9}",
                format!("[{i}] {name}").chars().take(w).collect::<String>(),
                crate::locale::number(self.from_sizes[i] as f64, 0)
            );
            for j in 0..self.segments.len() {
                let _ = write!(
                    line,
                    " {:>15}",
                    format!(
                        "{} ({})",
                        crate::locale::number(self.counts[i][j] as f64, 0),
                        crate::locale::percent(self.row_shares[i][j])
                    )
                );
            }
            if self.gone[i] > 0 {
                let _ = write!(line, "  gone {}", self.gone[i]);
            }
            let _ = writeln!(s, "{line}");
        }
        let mut line = format!(
            "  {:<w$} {:>9}",
            "new customers",
            crate::locale::number(self.new_customers.iter().sum::<u64>() as f64, 0)
        );
        for j in 0..self.segments.len() {
            let _ = write!(
                line,
                " {:>15}",
                crate::locale::number(self.new_customers[j] as f64, 0)
            );
        }
        let _ = writeln!(s, "{line}");
        s
    }
}

/// How much two segment models agree on the same customers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// Adjusted Rand index of the two assignments (1 = the same grouping).
    pub adjusted_rand_index: f64,
    /// Customers assigned by both models (matched by id).
    pub customers: usize,
    /// Share of those customers whose segment has the same name in both.
    pub same_name_share: f64,
}

/// [`Stability`] of model `a` on features `fa` against model `b` on `fb`
/// (each model's own features of the same customers; matched by id).
pub fn stability(
    a: &SegmentModel,
    fa: &SegmentFeatures,
    b: &SegmentModel,
    fb: &SegmentFeatures,
) -> Result<Stability> {
    check_unique(fa, "the first model's customers")?;
    check_unique(fb, "the second model's customers")?;
    let la = segment_ids(a, fa)?;
    let lb = segment_ids(b, fb)?;
    let (both, _, _) = join(&fa.customer_ids, &fb.customer_ids);
    if both.is_empty() {
        return Err(SegmentError::input(
            "stability",
            "customers assigned by both models",
            "no customer id in common",
        ));
    }
    let x: Vec<i64> = both.iter().map(|&(i, _)| la[i] as i64).collect();
    let y: Vec<i64> = both.iter().map(|&(_, j)| lb[j] as i64).collect();
    let ari = adjusted_rand_index(&x, &y).ok_or_else(|| {
        SegmentError::input("stability", "two assignments of equal length", "none")
    })?;
    let (na, nb) = (a.names(), b.names());
    let same = both
        .iter()
        .filter(|&&(i, j)| na.get(la[i]) == nb.get(lb[j]))
        .count();
    Ok(Stability {
        adjusted_rand_index: ari,
        customers: both.len(),
        same_name_share: same as f64 / both.len() as f64,
    })
}
