//! Segment names from RFM quantiles: distinct, and each word true of its group.
//!
//! ## Tiers
//!
//! For each measure — recency (days since the last completed order),
//! frequency (completed orders), monetary (revenue) and average ticket —
//! two quantiles are taken over *all* the customers segmented: `Q(0.4)` and
//! `Q(0.6)` (linear interpolation between order statistics, numpy's
//! default). A segment's **tier** on a measure compares its members'
//! **median** with them:
//!
//! | tier | frequency, monetary, average ticket | recency |
//! |---|---|---|
//! | high | median > `Q(0.6)` | recent: median < `Q(0.4)` |
//! | low | median < `Q(0.4)` | lapsed: median > `Q(0.6)` |
//! | mid | otherwise | otherwise |
//!
//! In the terms of classic RFM scoring (1–5 by quintile), the segment's
//! median customer scores 4–5 (high), 3 (mid) or 1–2 (low). So "high
//! value" means the segment's median customer spent more than 60% of all
//! customers (hence more than the overall median), "recent" that its median
//! customer bought more recently than 60% of all customers. A tier is only
//! given when the median is strictly past the quantile, so with ties (most
//! customers of a shop have one order) a group of one-order customers is
//! neither "frequent" nor "infrequent" when one order is the norm.
//!
//! ## Names
//!
//! The first rule that holds gives the base name (R = recency tier,
//! F = frequency tier, M = monetary tier):
//!
//! | rule | name | what is true of the group |
//! |---|---|---|
//! | R recent, F high, M high | Champions | recent, frequent, high value |
//! | R not lapsed, F high | Loyal | frequent, not lapsed |
//! | R recent | Promising/New | recent, not both frequent and high value |
//! | R lapsed, F or M high | At risk | was frequent or valuable, lapsed |
//! | R lapsed, M low | Lost | lapsed, low value |
//! | R mid, M high | Big spenders | high value, mid recency, not frequent |
//! | otherwise | Hibernating | not recent, neither frequent nor high value |
//!
//! ## Two segments with the same base name
//!
//! They are told apart by what differs, never by a number: the segments
//! sharing a name get the first of these qualifiers on which they differ,
//! then (among those still alike) the next one, until every name is
//! distinct:
//!
//! 1. value tier: "high value", "mid value", "low value";
//! 2. recency tier: "recent", "mid recency", "lapsed";
//! 3. frequency tier: "frequent", "mid frequency", "infrequent";
//! 4. average ticket tier: "high ticket", "mid ticket", "low ticket";
//! 5. the category with the largest share of the segment's revenue:
//!    "top category eletronicos";
//! 6. where the median spend sits: "top 12% spend" (12% of all customers
//!    spent at least the segment's median);
//! 7. the median recency: "median recency 34 days";
//! 8. the median number of orders: "median 3 orders";
//! 9. the size: "1.234 customers";
//! 10. the segment id ("#3"), only for segments alike on all of the above.
//!
//! Qualifiers follow the base name after " · ": "Champions · high ticket",
//! "Champions · low ticket". Names depend only on the members, never on
//! cluster ids (but the last resort): permuting the ids permutes the names.

use serde::{Deserialize, Serialize};

use crate::features::SHARE_PREFIX;

use super::errors::{Result, SegmentError};
use super::features::SegmentFeatures;

pub const CHAMPIONS: &str = "Champions";
pub const LOYAL: &str = "Loyal";
pub const PROMISING: &str = "Promising/New";
pub const AT_RISK: &str = "At risk";
pub const BIG_SPENDERS: &str = "Big spenders";
pub const HIBERNATING: &str = "Hibernating";
pub const LOST: &str = "Lost";
/// DBSCAN's noise group.
pub const NOISE: &str = "noise";
/// A median below this quantile of all customers is "low" (recency: above
/// the mirror quantile is "lapsed").
pub const LOW_QUANTILE: f64 = 0.4;
/// A median above this quantile of all customers is "high".
pub const HIGH_QUANTILE: f64 = 0.6;
/// Between a base name and its qualifiers.
pub const SEPARATOR: &str = " · ";

/// A segment's position in scaled RFM units (0 = the average customer):
/// the centroid's coordinates, kept in each profile for plots.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RfmPosition {
    /// Scaled recency: positive = more days since the last order than average.
    pub recency: f64,
    /// Scaled log1p frequency.
    pub frequency: f64,
    /// Scaled log1p monetary.
    pub monetary: f64,
}

/// Where a segment's median sits among all customers (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Low,
    Mid,
    High,
}

/// The quantiles `Q(0.4)` and `Q(0.6)` of a measure over all customers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierCuts {
    /// `Q(0.4)`.
    pub low: f64,
    /// `Q(0.6)`.
    pub high: f64,
}

/// Quantile `q` of ascending `sorted` values (linear interpolation).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (i, frac) = (h.floor() as usize, h - h.floor());
    match sorted.get(i + 1) {
        Some(next) if frac > 0.0 => sorted[i] + frac * (next - sorted[i]),
        _ => sorted[i],
    }
}

/// Median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    quantile(&s, 0.5)
}

impl TierCuts {
    pub fn of(values: &[f64]) -> Self {
        let mut s = values.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        TierCuts {
            low: quantile(&s, LOW_QUANTILE),
            high: quantile(&s, HIGH_QUANTILE),
        }
    }

    /// The tier of a median where more is better (frequency, monetary, ticket).
    pub fn tier(&self, median: f64) -> Tier {
        if median > self.high {
            Tier::High
        } else if median < self.low {
            Tier::Low
        } else {
            Tier::Mid
        }
    }

    /// The tier of a median recency: `High` = recent (fewer days).
    pub fn recency_tier(&self, median: f64) -> Tier {
        if median < self.low {
            Tier::High
        } else if median > self.high {
            Tier::Low
        } else {
            Tier::Mid
        }
    }
}

/// A segment's tiers; `recency: High` means recent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmTiers {
    pub recency: Tier,
    pub frequency: Tier,
    pub monetary: Tier,
    pub ticket: Tier,
}

/// What the names are read from: one segment's medians and more.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentStats {
    pub size: usize,
    pub median_recency_days: f64,
    pub median_frequency: f64,
    pub median_monetary: f64,
    pub median_ticket: f64,
    /// Share of *all* customers whose spend is at least this median.
    pub spend_top_share: f64,
    /// The category with the largest share of the segment's revenue.
    pub top_category: Option<String>,
    pub tiers: RfmTiers,
}

/// The names of a segmentation and what they were read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Naming {
    /// `Q(0.4)` and `Q(0.6)` over all customers of recency, frequency,
    /// monetary and average ticket.
    pub recency: TierCuts,
    pub frequency: TierCuts,
    pub monetary: TierCuts,
    pub ticket: TierCuts,
    /// One per segment, in id order.
    pub stats: Vec<SegmentStats>,
    pub names: Vec<String>,
}

/// The base name of a segment's tiers (the rule table of the module docs).
pub fn base_name(t: &RfmTiers) -> &'static str {
    use Tier::*;
    let (r, f, m) = (t.recency, t.frequency, t.monetary);
    if r == High && f == High && m == High {
        CHAMPIONS
    } else if r != Low && f == High {
        LOYAL
    } else if r == High {
        PROMISING
    } else if r == Low && (f == High || m == High) {
        AT_RISK
    } else if r == Low && m == Low {
        LOST
    } else if r == Mid && m == High {
        BIG_SPENDERS
    } else {
        HIBERNATING
    }
}

fn tier_word(t: Tier, words: [&str; 3]) -> String {
    match t {
        Tier::High => words[0],
        Tier::Mid => words[1],
        Tier::Low => words[2],
    }
    .to_string()
}

/// The qualifiers of a segment, in the order they are tried.
fn qualifiers(id: usize, s: &SegmentStats) -> Vec<String> {
    let t = &s.tiers;
    vec![
        tier_word(t.monetary, ["high value", "mid value", "low value"]),
        tier_word(t.recency, ["recent", "mid recency", "lapsed"]),
        tier_word(t.frequency, ["frequent", "mid frequency", "infrequent"]),
        tier_word(t.ticket, ["high ticket", "mid ticket", "low ticket"]),
        s.top_category
            .as_ref()
            .map(|c| format!("top category {c}"))
            .unwrap_or_else(|| "no category revenue".into()),
        format!(
            "top {}% spend",
            (100.0 * s.spend_top_share).ceil().clamp(0.0, 100.0) as u64
        ),
        format!(
            "median recency {} days",
            crate::locale::number(s.median_recency_days, 0)
        ),
        format!(
            "median {} orders",
            crate::locale::number(s.median_frequency, 1).trim_end_matches(",0")
        ),
        format!("{} customers", crate::locale::number(s.size as f64, 0)),
        format!("#{id}"),
    ]
}

/// Distinct names for segments from their stats (the module docs' rules).
pub fn names_from_stats(stats: &[SegmentStats]) -> Vec<String> {
    let k = stats.len();
    let mut names: Vec<String> = stats
        .iter()
        .map(|s| base_name(&s.tiers).to_string())
        .collect();
    let quals: Vec<Vec<String>> = stats
        .iter()
        .enumerate()
        .map(|(i, s)| qualifiers(i, s))
        .collect();
    // Sets of segments still alike, with the next qualifier to try.
    let mut pending: Vec<(Vec<usize>, usize)> = Vec::new();
    let mut done = vec![false; k];
    for i in 0..k {
        if done[i] {
            continue;
        }
        let same: Vec<usize> = (i..k).filter(|&j| names[j] == names[i]).collect();
        for &j in &same {
            done[j] = true;
        }
        if same.len() > 1 {
            pending.push((same, 0));
        }
    }
    while let Some((set, from)) = pending.pop() {
        let Some(q) = (from..quals[set[0]].len())
            .find(|&q| set.iter().any(|&j| quals[j][q] != quals[set[0]][q]))
        else {
            continue; // identical ids cannot happen; nothing left to add
        };
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for &j in &set {
            names[j] = format!("{}{SEPARATOR}{}", names[j], quals[j][q]);
            match groups.iter_mut().find(|(l, _)| *l == quals[j][q]) {
                Some((_, g)) => g.push(j),
                None => groups.push((quals[j][q].clone(), vec![j])),
            }
        }
        for (_, g) in groups {
            if g.len() > 1 {
                pending.push((g, q + 1));
            }
        }
    }
    names
}

/// Stats and distinct names of the `k` segments of `labels` (one per
/// customer of `features`, `None` = not in a segment, e.g. DBSCAN's noise;
/// such customers still count in the overall quantiles).
pub fn name_groups(
    features: &SegmentFeatures,
    labels: &[Option<usize>],
    k: usize,
) -> Result<Naming> {
    let n = features.n_customers();
    check_labels(labels, n, k)?;
    let recency = features.column("recency_days")?;
    let frequency = features.column("frequency")?;
    let monetary = features.column("monetary")?;
    let ticket = features.column("average_ticket")?;
    let shares: Vec<(String, Vec<f64>)> = features
        .categories
        .iter()
        .map(|c| Ok((c.clone(), features.column(&format!("{SHARE_PREFIX}{c}"))?)))
        .collect::<Result<_>>()?;
    let (tr, tf, tm, tt) = (
        TierCuts::of(&recency),
        TierCuts::of(&frequency),
        TierCuts::of(&monetary),
        TierCuts::of(&ticket),
    );
    let mut sorted_monetary = monetary.clone();
    sorted_monetary.sort_by(|a, b| a.total_cmp(b));
    let mut members = vec![Vec::new(); k];
    for (i, l) in labels.iter().enumerate() {
        if let Some(c) = l {
            members[*c].push(i);
        }
    }
    let stats: Vec<SegmentStats> = members
        .iter()
        .map(|m| {
            let pick = |v: &[f64]| m.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let (r, f, mo, t) = (
                median(&pick(&recency)),
                median(&pick(&frequency)),
                median(&pick(&monetary)),
                median(&pick(&ticket)),
            );
            let at_least = sorted_monetary.len() - sorted_monetary.partition_point(|v| *v < mo);
            let top_category = shares
                .iter()
                .map(|(c, s)| (c, m.iter().map(|&i| s[i] * monetary[i]).sum::<f64>()))
                .filter(|(_, r)| *r > 0.0)
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(c, _)| c.clone());
            SegmentStats {
                size: m.len(),
                median_recency_days: r,
                median_frequency: f,
                median_monetary: mo,
                median_ticket: t,
                spend_top_share: if n > 0 {
                    at_least as f64 / n as f64
                } else {
                    0.0
                },
                top_category,
                tiers: RfmTiers {
                    recency: tr.recency_tier(r),
                    frequency: tf.tier(f),
                    monetary: tm.tier(mo),
                    ticket: tt.tier(t),
                },
            }
        })
        .collect();
    let names = names_from_stats(&stats);
    Ok(Naming {
        recency: tr,
        frequency: tf,
        monetary: tm,
        ticket: tt,
        stats,
        names,
    })
}

/// The base name of a full segment name ("Champions · high ticket" →
/// "Champions"; the numbered names of models saved before these rules,
/// "Loyal (2)", → "Loyal").
pub fn base_of(name: &str) -> &str {
    let base = name.split(SEPARATOR).next().unwrap_or(name);
    base.split(" (").next().unwrap_or(base)
}

/// What marketing should do with a segment of this name (qualifiers and the
/// numbered names of older models get their base name's advice; DBSCAN's
/// noise gets advice too).
///
/// | segment | action |
/// |---|---|
/// | Champions | reward and retain: loyalty perks, early access, referrals; no discounts needed |
/// | Loyal | grow the basket: cross-sell the next category, bundles, subscription |
/// | Promising/New | second purchase: onboarding series, a time-limited offer on a next order |
/// | At risk | win back now: personal reactivation offer before they lapse for good |
/// | Big spenders | a reason to come back: premium service, new arrivals in their category |
/// | Hibernating | low-cost reminders: seasonal campaigns, best sellers, no heavy discount |
/// | Lost | do not spend on them: one last win-back, then suppress from paid channels |
/// | noise | look one by one: unusual customers (very large or odd baskets), check for B2B or errors |
pub fn marketing_action(name: &str) -> &'static str {
    match base_of(name) {
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
        BIG_SPENDERS => {
            "Give them a reason to come back: premium service, new arrivals and restocks in their category, a personal follow-up; no deep discounts."
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

/// One label per customer (`n`), every cluster id below `k` (`None`: noise).
pub(crate) fn check_labels(labels: &[Option<usize>], n: usize, k: usize) -> Result<()> {
    if labels.len() != n {
        return Err(SegmentError::input(
            "segment labels",
            format!("one label per customer ({n})"),
            format!("{} labels", labels.len()),
        ));
    }
    if let Some(bad) = labels.iter().flatten().find(|&&l| l >= k) {
        return Err(SegmentError::input(
            "segment labels",
            format!("cluster ids below {k}"),
            bad.to_string(),
        ));
    }
    Ok(())
}
