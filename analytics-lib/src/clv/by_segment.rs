//! CLV by segment: per customer group, how many customers, their total and
//! mean CLV, mean P(alive) and expected purchases (the dashboard's "CLV by
//! segment" card, the notebook's table).
//!
//! The grouping is the caller's: a function from customer id to segment
//! number (`None`: the customer has no segment), so that any assignment
//! (the live segment model's, a saved one, a hand-made one) can be used
//! without this module knowing how segments are computed.

use serde::{Deserialize, Serialize};

use super::algorithm::ClvPredictions;
use super::errors::{ClvError, Result};
use super::summary::CustomerSummary;

/// One segment's CLV figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentClv {
    /// The segment's number (index into the names given); `None` for the
    /// customers without a segment.
    pub segment: Option<usize>,
    /// The segment's name (`"no segment"` for `segment: None`).
    pub name: String,
    /// Customers of the summary in this segment.
    pub customers: usize,
    /// Sum of their CLV over the horizon (R$, discounted).
    pub total_clv: f64,
    /// Share of the total CLV of every customer (0 to 1; 0 when that total is 0).
    pub share_of_clv: f64,
    /// Mean CLV, P(alive) and expected purchase days per customer; `None`
    /// for a segment without customers in the summary.
    pub mean_clv: Option<f64>,
    pub mean_p_alive: Option<f64>,
    pub mean_expected_purchases: Option<f64>,
}

/// The CLV of `predictions` (for `summary`'s customers, in its order)
/// grouped by `segment_of(customer_id)`: one row per name of `names`, in
/// order (segments without customers included, their means `None`), then a
/// `"no segment"` row when some customers have none. A segment number
/// outside `names` is an error.
pub fn clv_by_segment(
    summary: &CustomerSummary,
    predictions: &ClvPredictions,
    names: &[String],
    mut segment_of: impl FnMut(&str) -> Option<usize>,
) -> Result<Vec<SegmentClv>> {
    if predictions.values.len() != summary.len() {
        return Err(ClvError::data(
            "CLV by segment",
            format!(
                "one prediction per customer of the summary ({})",
                summary.len()
            ),
            predictions.values.len(),
        ));
    }
    if predictions.as_of != summary.as_of {
        return Err(ClvError::data(
            "CLV by segment",
            format!("predictions at the summary's date {}", summary.as_of),
            predictions.as_of,
        ));
    }
    let k = names.len();
    let mut groups = Vec::with_capacity(summary.len());
    for (id, v) in summary.customer_ids.iter().zip(&predictions.values) {
        let g = match segment_of(id) {
            Some(s) if s < k => Some(s),
            Some(s) => {
                return Err(ClvError::data(
                    "CLV by segment",
                    format!("a segment number below {k} (one per name)"),
                    format!("segment {s} for customer `{id}`"),
                ));
            }
            None => None,
        };
        groups.push((g, v.clv, v.p_alive, v.expected_purchases));
    }
    segment_clv_rows(names, groups)
}

/// The rows of [`clv_by_segment`] from each customer's segment (`None`: no
/// segment), CLV, P(alive) and expected purchases: what a caller that holds
/// the values already (`serve`, per customer row) groups without a summary.
/// A segment number outside `names` is an error.
pub fn segment_clv_rows(
    names: &[String],
    customers: impl IntoIterator<Item = (Option<usize>, f64, f64, f64)>,
) -> Result<Vec<SegmentClv>> {
    let k = names.len();
    // Per group (k segments, then "no segment"): customers, Σ clv, Σ p_alive, Σ purchases.
    let mut acc = vec![(0usize, 0.0f64, 0.0f64, 0.0f64); k + 1];
    for (g, clv, p_alive, purchases) in customers {
        let g = match g {
            Some(s) if s < k => s,
            Some(s) => {
                return Err(ClvError::data(
                    "CLV by segment",
                    format!("a segment number below {k} (one per name)"),
                    format!("segment {s}"),
                ));
            }
            None => k,
        };
        let a = &mut acc[g];
        a.0 += 1;
        a.1 += clv;
        a.2 += p_alive;
        a.3 += purchases;
    }
    let total: f64 = acc.iter().map(|a| a.1).sum();
    let mean = |sum: f64, n: usize| (n > 0).then(|| sum / n as f64);
    Ok(acc
        .into_iter()
        .enumerate()
        .filter(|(g, a)| *g < k || a.0 > 0)
        .map(|(g, (n, clv, alive, purchases))| SegmentClv {
            segment: (g < k).then_some(g),
            name: names.get(g).cloned().unwrap_or_else(|| "no segment".into()),
            customers: n,
            total_clv: clv,
            share_of_clv: if total > 0.0 { clv / total } else { 0.0 },
            mean_clv: mean(clv, n),
            mean_p_alive: mean(alive, n),
            mean_expected_purchases: mean(purchases, n),
        })
        .collect())
}
