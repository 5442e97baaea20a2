//! Segment profiles: who is in a segment, in original units.

use serde::{Deserialize, Serialize};

use crate::features::SHARE_PREFIX;

use super::errors::{Result, SegmentError};
use super::features::SegmentFeatures;
use super::naming::{NOISE, RfmPosition, check_labels};

/// The id of DBSCAN's noise group.
pub const NOISE_ID: i64 = -1;

/// A category's share of a segment's revenue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryShare {
    pub category: String,
    pub share: f64,
}

/// Mean and median of one feature over a segment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub mean: f64,
    pub median: f64,
}

/// One segment, described in original units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    /// 0.. for clusters; −1 for noise.
    pub segment_id: i64,
    pub name: String,
    pub size: usize,
    /// Share of all customers.
    pub share_customers: f64,
    /// Share of all customers' revenue (monetary).
    pub revenue_share: f64,
    pub recency_days: Stat,
    pub frequency: Stat,
    pub monetary: Stat,
    /// Up to three categories with the largest share of the segment's revenue.
    pub top_categories: Vec<CategoryShare>,
    /// Where the segment sits in scaled RFM units (the centroid; the name
    /// comes from the members' medians, see [`super::naming`]).
    pub position: RfmPosition,
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat {
            mean: 0.0,
            median: 0.0,
        };
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    };
    Stat { mean, median }
}

/// Profiles of the segments of `labels` (one per customer of `features`;
/// `None` = noise). `names[c]` and `positions[c]` describe cluster `c`;
/// `noise_position` the noise group, if any. Clusters come in id order,
/// noise last; empty clusters are kept (size 0) so ids stay stable.
pub fn profiles(
    features: &SegmentFeatures,
    labels: &[Option<usize>],
    names: &[String],
    positions: &[RfmPosition],
    noise_position: Option<RfmPosition>,
) -> Result<Vec<SegmentProfile>> {
    let n = features.n_customers();
    let k = names.len();
    if positions.len() != k {
        return Err(SegmentError::input(
            "segment positions",
            format!("one per segment ({k})"),
            format!("{}", positions.len()),
        ));
    }
    check_labels(labels, n, k)?;
    let recency = features.column("recency_days")?;
    let frequency = features.column("frequency")?;
    let monetary = features.column("monetary")?;
    let shares: Vec<(String, Vec<f64>)> = features
        .categories
        .iter()
        .map(|c| Ok((c.clone(), features.column(&format!("{SHARE_PREFIX}{c}"))?)))
        .collect::<Result<_>>()?;
    let total_revenue: f64 = monetary.iter().sum();

    let mut groups: Vec<(i64, String, RfmPosition, Vec<usize>)> = (0..k)
        .map(|c| (c as i64, names[c].clone(), positions[c], Vec::new()))
        .collect();
    let mut noise = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match l {
            Some(c) => groups[*c].3.push(i),
            None => noise.push(i),
        }
    }
    if !noise.is_empty() {
        let p = noise_position.unwrap_or(RfmPosition {
            recency: 0.0,
            frequency: 0.0,
            monetary: 0.0,
        });
        groups.push((NOISE_ID, NOISE.to_string(), p, noise));
    }
    Ok(groups
        .into_iter()
        .map(|(id, name, position, members)| {
            let pick = |v: &[f64]| members.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let revenue: f64 = members.iter().map(|&i| monetary[i]).sum();
            let mut cats: Vec<CategoryShare> = shares
                .iter()
                .map(|(c, s)| {
                    let r: f64 = members.iter().map(|&i| s[i] * monetary[i]).sum();
                    CategoryShare {
                        category: c.clone(),
                        share: if revenue > 0.0 { r / revenue } else { 0.0 },
                    }
                })
                .filter(|c| c.share > 0.0)
                .collect();
            cats.sort_by(|a, b| {
                b.share
                    .total_cmp(&a.share)
                    .then(a.category.cmp(&b.category))
            });
            cats.truncate(3);
            SegmentProfile {
                segment_id: id,
                name,
                size: members.len(),
                share_customers: if n > 0 {
                    members.len() as f64 / n as f64
                } else {
                    0.0
                },
                revenue_share: if total_revenue > 0.0 {
                    revenue / total_revenue
                } else {
                    0.0
                },
                recency_days: stat(pick(&recency)),
                frequency: stat(pick(&frequency)),
                monetary: stat(pick(&monetary)),
                top_categories: cats,
                position,
            }
        })
        .collect())
}

/// The profiles as a table for people (one row per segment, in the given
/// order): size and shares, median recency with the date it points to
/// (`as_of − median recency`, a `Date` column that notebook tables show as
/// dd/mm/yyyy), orders, spend and the top categories with their shares.
pub fn profiles_frame(
    profiles: &[SegmentProfile],
    as_of: chrono::NaiveDate,
) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let last_order: Vec<i32> = profiles
        .iter()
        .map(|p| {
            let d = as_of - chrono::Duration::days(p.recency_days.median.round() as i64);
            (d - epoch).num_days() as i32
        })
        .collect();
    let cats: Vec<String> = profiles
        .iter()
        .map(|p| {
            p.top_categories
                .iter()
                .map(|c| format!("{} {}", c.category, crate::locale::percent(c.share)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let f = |g: &dyn Fn(&SegmentProfile) -> f64| profiles.iter().map(g).collect::<Vec<f64>>();
    let err = |e: PolarsError| SegmentError::input("profile table", "a table", e.to_string());
    let last = Column::new("typical last order".into(), last_order)
        .cast(&DataType::Date)
        .map_err(err)?;
    DataFrame::new(
        profiles.len(),
        vec![
            Column::new(
                "segment".into(),
                profiles.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "customers".into(),
                profiles.iter().map(|p| p.size as u64).collect::<Vec<_>>(),
            ),
            Column::new("share of customers".into(), f(&|p| p.share_customers)),
            Column::new("share of revenue".into(), f(&|p| p.revenue_share)),
            Column::new(
                "median recency (days)".into(),
                f(&|p| p.recency_days.median),
            ),
            last,
            Column::new("mean orders".into(), f(&|p| p.frequency.mean)),
            Column::new("median spend".into(), f(&|p| p.monetary.median)),
            Column::new("mean spend".into(), f(&|p| p.monetary.mean)),
            Column::new("top categories".into(), cats),
        ],
    )
    .map_err(err)
}
