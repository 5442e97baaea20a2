//! The retrain report: what the job read, found and decided, as JSON (for
//! machines, MLflow and CI artifacts) and as readable text (for people).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::drift::DriftReport;
use crate::locale;

/// What happened to a challenger: the registry's [`Decision`], written
/// into the version's manifest.
pub use crate::registry::Decision;

/// One side of a comparison: the live champion or the new challenger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    /// Registry version (`v0004`); the challenger's once committed.
    pub version: Option<String>,
    /// `xgboost`, `random_forest`, … for customer_spend; `kmeans k=5` for segments.
    pub model: String,
    /// The compared score ([`ModelDecision::metric`]); `None` when it could
    /// not be computed (e.g. a single segment has no silhouette).
    pub score: Option<f64>,
    /// Every metric computed on the new test set.
    pub metrics: serde_json::Value,
}

/// The decision about one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDecision {
    pub decision: Decision,
    pub reason: String,
    /// `rmse` (lower is better) or `silhouette` (higher is better).
    pub metric: String,
    pub higher_is_better: bool,
    pub challenger: Contender,
    /// `None` when the model had no live version.
    pub champion: Option<Contender>,
    pub live_before: Option<String>,
    pub live_after: Option<String>,
    /// Versions removed by pruning.
    pub pruned: Vec<String>,
}

/// The data the job trained and evaluated on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Where it came from (the curated folder).
    pub source: String,
    /// `fnv1a64:<hex>` of the customer-spend training and test matrices and targets.
    pub fingerprint: String,
    /// Rows per table after cleaning.
    pub rows: BTreeMap<String, u64>,
    /// Rows removed by final cleaning.
    pub defects_removed: u64,
    pub as_of: NaiveDate,
    pub train_cutoff: NaiveDate,
    pub test_cutoff: NaiveDate,
    pub customers_train: usize,
    /// Customers of the out-of-time test set (both contenders are scored on it).
    pub customers_test: usize,
    /// Customers segmented at `as_of`.
    pub customers_segments: usize,
    /// What came back from the warehouse: queries, rows, bytes of Arrow
    /// data (`None`: a Parquet folder, read whole).
    #[serde(default)]
    pub fetched: Option<super::Fetched>,
}

/// Everything one retrain run did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrainReport {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub models_dir: String,
    pub data: DataSummary,
    /// Relative tolerance: a challenger may be this much worse and still win.
    pub tolerance: f64,
    pub keep: usize,
    /// Leftovers of killed runs removed before starting.
    pub recovered: Vec<String>,
    /// Per model: the new features against the live version's training
    /// profile (`None`: no live version, or it has no profile).
    pub drift: BTreeMap<String, Option<DriftReport>>,
    /// Per model: `"promoted"` or `"rejected"` (the summary of `models`).
    pub decision: BTreeMap<String, Decision>,
    pub models: BTreeMap<String, ModelDecision>,
    /// Warnings that did not stop the run (e.g. a champion that no longer loads).
    pub warnings: Vec<String>,
    /// Why nothing was trained (the data equals the live versions'); then
    /// `models`, `decision` and `drift` are empty.
    #[serde(default)]
    pub skipped: Option<String>,
    /// Champion and challenger segment models on the same customers at
    /// `as_of` (`None`: no champion, or nothing trained).
    #[serde(default)]
    pub segment_stability: Option<SegmentStability>,
    /// Who moved between the segments of the model live after the run, from
    /// `as_of − 90 d` to `as_of` (`None`: nothing trained, or it failed —
    /// then a warning says why).
    #[serde(default)]
    pub segment_migration: Option<SegmentMigration>,
}

/// How much the challenger's segments agree with the champion's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentStability {
    pub champion_version: String,
    /// Adjusted Rand index of the two models' assignments of the same
    /// customers (1 = the same grouping, whatever the ids; ≈ 0 = chance).
    pub adjusted_rand_index: f64,
    pub customers: usize,
    /// Share of the customers whose segment has the same name in both.
    pub same_name_share: f64,
}

/// The migration matrix of the retrain report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMigration {
    /// `challenger` or `champion`: the model live after the run.
    pub model: String,
    /// Its registry version, once committed.
    pub version: Option<String>,
    pub matrix: crate::segments::MigrationMatrix,
}

fn opt(x: Option<f64>, decimals: usize) -> String {
    x.map(|v| locale::number(v, decimals))
        .unwrap_or_else(|| "—".into())
}

fn timestamp(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%d/%m/%Y %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

impl RetrainReport {
    /// The readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let d = &self.data;
        let _ = writeln!(s, "Retrain report — {}", timestamp(&self.started_at));
        let _ = writeln!(
            s,
            "models {}, data {} ({} s)",
            self.models_dir,
            d.source,
            locale::number(self.seconds, 1)
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Data");
        let _ = writeln!(s, "  fingerprint        {}", d.fingerprint);
        let rows: Vec<String> = d
            .rows
            .iter()
            .map(|(t, n)| format!("{t} {}", locale::number(*n as f64, 0)))
            .collect();
        let _ = writeln!(s, "  rows after cleaning {}", rows.join(", "));
        let _ = writeln!(
            s,
            "  removed by cleaning {}",
            locale::number(d.defects_removed as f64, 0)
        );
        if let Some(f) = &d.fetched {
            let _ = writeln!(
                s,
                "  fetched            {} rows, {} MiB of Arrow data, {} queries",
                locale::number(f.rows as f64, 0),
                locale::number(f.bytes as f64 / (1024.0 * 1024.0), 1),
                f.queries
            );
        }
        let _ = writeln!(
            s,
            "  as of {}; training cutoff {} ({} customers); test cutoff {} ({} customers); {} customers segmented",
            locale::date(d.as_of),
            locale::date(d.train_cutoff),
            locale::number(d.customers_train as f64, 0),
            locale::date(d.test_cutoff),
            locale::number(d.customers_test as f64, 0),
            locale::number(d.customers_segments as f64, 0),
        );
        if let Some(why) = &self.skipped {
            let _ = writeln!(s);
            let _ = writeln!(s, "SKIPPED — {why}");
        }
        if !self.recovered.is_empty() {
            let _ = writeln!(
                s,
                "  cleaned up {} leftover(s) of an interrupted run",
                self.recovered.len()
            );
        }
        for (model, drift) in &self.drift {
            let _ = writeln!(s);
            match drift {
                None => {
                    let _ = writeln!(
                        s,
                        "Drift of {model}: no reference (no live version with a training profile)"
                    );
                }
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "Drift of {model} against {} (PSI; <0,1 stable, 0,1–0,25 moderate, >0,25 drifted): {} drifted, {} moderate",
                        r.reference_version,
                        locale::percent(r.share_drifted),
                        locale::percent(r.share_moderate)
                    );
                    for f in &r.features {
                        let _ = writeln!(
                            s,
                            "  {:<28} {:>8}  {}",
                            f.feature,
                            locale::number(f.psi, 3),
                            f.band.name()
                        );
                    }
                    if !r.new_features.is_empty() {
                        let _ = writeln!(s, "  new features: {}", r.new_features.join(", "));
                    }
                    if !r.missing_features.is_empty() {
                        let _ = writeln!(
                            s,
                            "  features no longer present: {}",
                            r.missing_features.join(", ")
                        );
                    }
                }
            }
        }
        for (model, m) in &self.models {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{model}: {} — {}",
                m.decision.name().to_uppercase(),
                m.reason
            );
            let decimals = if m.higher_is_better { 4 } else { 2 };
            let line = |who: &str, c: &Contender| {
                let coverage = match (
                    c.metrics.get("coverage_80").and_then(|v| v.as_f64()),
                    c.metrics.get("coverage_95").and_then(|v| v.as_f64()),
                ) {
                    (Some(c80), Some(c95)) => format!(
                        " (interval coverage on the test cutoff: 80 % → {}, 95 % → {})",
                        crate::locale::percent(c80),
                        crate::locale::percent(c95)
                    ),
                    _ => String::new(),
                };
                format!(
                    "  {who:<11} {:<8} {:<24} {} {}{coverage}",
                    c.version.as_deref().unwrap_or("—"),
                    c.model,
                    m.metric,
                    opt(c.score, decimals)
                )
            };
            if let Some(c) = &m.champion {
                let _ = writeln!(s, "{}", line("champion", c));
            }
            let _ = writeln!(s, "{}", line("challenger", &m.challenger));
            let _ = writeln!(
                s,
                "  live: {} → {}",
                m.live_before.as_deref().unwrap_or("none"),
                m.live_after.as_deref().unwrap_or("none")
            );
            if !m.pruned.is_empty() {
                let _ = writeln!(s, "  pruned: {}", m.pruned.join(", "));
            }
        }
        if let Some(st) = &self.segment_stability {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "Segment stability, challenger against champion {} on {} customers: adjusted Rand index {} (1 = the same grouping); {} keep a segment of the same name",
                st.champion_version,
                locale::number(st.customers as f64, 0),
                locale::number(st.adjusted_rand_index, 3),
                locale::percent(st.same_name_share)
            );
        }
        if let Some(m) = &self.segment_migration {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "Segment migration ({} {}, the model live after the run)",
                m.model,
                m.version.as_deref().unwrap_or("")
            );
            s.push_str(&m.matrix.to_text());
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Warnings");
            for w in &self.warnings {
                let _ = writeln!(s, "  {w}");
            }
        }
        s
    }
}
