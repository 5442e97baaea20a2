//! Segment names from where a segment sits in RFM terms.
//!
//! A segment's position is the mean of its members' *scaled* recency,
//! frequency and monetary (for KMeans, the centroid's coordinates): 0 is the
//! average customer, +1 one standard deviation above (frequency and monetary
//! after `log1p`). With `R = −recency` (higher = bought more recently),
//! `F`, `M`, value `V = (F + M) / 2` and the threshold `t = 0.25`, the first
//! rule that holds names the segment:
//!
//! | rule | name |
//! |---|---|
//! | `R > t` and `F > t` and `M > t` | Champions (recent, frequent, high value) |
//! | `R ≥ −t` and `F > t` | Loyal (frequent, not lapsed) |
//! | `R > t` | Promising/New (recent, few orders) |
//! | `R < −t` and `V > t` | At risk (was valuable, not recent) |
//! | `R < −0.75` and `V ≤ 0` | Lost (long ago, few orders, low value) |
//! | `R ≥ −t` and `V > t` | Loyal (big spenders of average recency) |
//! | otherwise | Hibernating |
//!
//! Names depend only on positions, never on cluster ids: permuting the ids
//! permutes the names with them. When several segments get the same name,
//! they are ordered by value `V` (highest first), then recency `R`, then the
//! full position, and the second and later get " (2)", " (3)", …

use serde::{Deserialize, Serialize};

/// Threshold (in standard deviations) between "average" and "high"/"low".
pub const THRESHOLD: f64 = 0.25;
/// Below this `R` a lapsed, low-value segment is Lost rather than Hibernating.
pub const LOST_RECENCY: f64 = -0.75;

pub const CHAMPIONS: &str = "Champions";
pub const LOYAL: &str = "Loyal";
pub const PROMISING: &str = "Promising/New";
pub const AT_RISK: &str = "At risk";
pub const HIBERNATING: &str = "Hibernating";
pub const LOST: &str = "Lost";
/// DBSCAN's noise group.
pub const NOISE: &str = "noise";

/// A segment's position in scaled RFM units (0 = the average customer).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RfmPosition {
    /// Scaled recency: positive = more days since the last order than average.
    pub recency: f64,
    /// Scaled log1p frequency.
    pub frequency: f64,
    /// Scaled log1p monetary.
    pub monetary: f64,
}

impl RfmPosition {
    fn value(&self) -> f64 {
        (self.frequency + self.monetary) / 2.0
    }
}

/// The base name of one position (before disambiguation).
pub fn base_name(p: &RfmPosition) -> &'static str {
    let t = THRESHOLD;
    let r = -p.recency;
    let (f, m, v) = (p.frequency, p.monetary, p.value());
    if r > t && f > t && m > t {
        CHAMPIONS
    } else if r >= -t && f > t {
        LOYAL
    } else if r > t {
        PROMISING
    } else if r < -t && v > t {
        AT_RISK
    } else if r < LOST_RECENCY && v <= 0.0 {
        LOST
    } else if r >= -t && v > t {
        LOYAL
    } else {
        HIBERNATING
    }
}

/// Names of all segments, in the order of `positions`, made unique.
pub fn name_segments(positions: &[RfmPosition]) -> Vec<String> {
    let base: Vec<&'static str> = positions.iter().map(base_name).collect();
    let mut names: Vec<String> = base.iter().map(|b| b.to_string()).collect();
    let mut done = vec![false; positions.len()];
    for i in 0..positions.len() {
        if done[i] {
            continue;
        }
        let mut same: Vec<usize> = (0..positions.len())
            .filter(|&j| base[j] == base[i])
            .collect();
        same.sort_by(|&a, &b| {
            let (pa, pb) = (&positions[a], &positions[b]);
            pb.value()
                .total_cmp(&pa.value())
                .then(pa.recency.total_cmp(&pb.recency))
                .then(pb.frequency.total_cmp(&pa.frequency))
                .then(pb.monetary.total_cmp(&pa.monetary))
        });
        for (rank, &j) in same.iter().enumerate() {
            done[j] = true;
            if rank > 0 {
                names[j] = format!("{} ({})", base[j], rank + 1);
            }
        }
    }
    names
}

/// What marketing should do with a segment of this name (a numbered
/// duplicate such as "Loyal (2)" gets its base name's advice; DBSCAN's
/// noise gets advice too).
///
/// | segment | action |
/// |---|---|
/// | Champions | reward and retain: loyalty perks, early access, referrals; no discounts needed |
/// | Loyal | grow the basket: cross-sell the next category, bundles, subscription |
/// | Promising/New | second purchase: onboarding series, a time-limited offer on a next order |
/// | At risk | win back now: personal reactivation offer before they lapse for good |
/// | Hibernating | low-cost reminders: seasonal campaigns, best sellers, no heavy discount |
/// | Lost | do not spend on them: one last win-back, then suppress from paid channels |
/// | noise | look one by one: unusual customers (very large or odd baskets), check for B2B or errors |
pub fn marketing_action(name: &str) -> &'static str {
    let base = name.split(" (").next().unwrap_or(name);
    match base {
        CHAMPIONS => {
            "Reward and retain: loyalty perks, early access to launches, referral invitations. They buy without discounts; protect the margin."
        }
        LOYAL => {
            "Grow the basket: cross-sell the next category they do not buy yet, bundles, subscriptions and free-shipping thresholds."
        }
        PROMISING => {
            "Get the second order: onboarding e-mails, a time-limited offer on the next purchase, recommendations from their first category."
        }
        AT_RISK => {
            "Win them back now: a personal reactivation offer (coupon on their favourite category) before they lapse for good; worth a real incentive."
        }
        HIBERNATING => {
            "Low-cost reminders: seasonal campaigns (Black Friday, Christmas), best sellers, no heavy discounts."
        }
        LOST => {
            "Do not spend on them: one last win-back message, then suppress them from paid channels and lookalike audiences."
        }
        NOISE => {
            "Look at them one by one: unusual customers (very large or odd baskets); check for resellers (B2B) or data errors."
        }
        _ => "No rule for this name.",
    }
}
