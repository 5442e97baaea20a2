//! Scoring: the customer-spend models on an out-of-time test set, the
//! segment models by silhouette on a sample, and `analytics evaluate`.

use super::*;

// ---------------------------------------------------------------- scoring

/// The out-of-time test cutoff of data with reference date `as_of` (the
/// same rule as training): `as_of − 90 d`.
pub fn test_cutoff(as_of: NaiveDate) -> NaiveDate {
    as_of - chrono::Duration::days(HORIZON_DAYS)
}

/// Score a customer-spend model on the out-of-time test set at `cutoff`
/// (features with the model's own category list; target: the revenue of
/// the 90 days from the cutoff).
pub fn score_spend<D: FeatureData + ?Sized>(
    model: &TrainedModel,
    data: &D,
    cutoff: NaiveDate,
) -> Result<Metrics> {
    let f = data
        .customer_features(cutoff, Some(&model.meta.categories))
        .map_err(|source| RetrainError::Training {
            stage: "computing the test features",
            source: Box::new(source),
        })?;
    let scored = (|| -> std::result::Result<Metrics, ModelError> {
        let x = f.matrix()?;
        let y = f.target()?;
        Metrics::compute(&y, &model.predict(&x)?)
    })();
    scored.map_err(training("scoring a customer-spend model"))
}

/// A segment model's quality on a set of customers.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SegmentScore {
    /// Mean silhouette of the model's segments on the sample, in its scaled
    /// space; `None` when the sample falls in fewer than two segments.
    pub silhouette: Option<f64>,
    pub k: usize,
    pub customers: usize,
    pub sample_rows: usize,
    /// Customers per segment name, over all the customers.
    pub sizes: BTreeMap<String, usize>,
}

/// Evenly spaced row indices: at most `size` of `n`.
pub fn sample_rows(n: usize, size: usize) -> Vec<usize> {
    let s = size.min(n);
    (0..s).map(|i| i * n / s.max(1)).collect()
}

/// Score `model` on the customers at `as_of` (features computed with the
/// model's own category list); the silhouette on [`sample_rows`].
pub fn score_segments<D: FeatureData + ?Sized>(
    model: &SegmentModel,
    data: &D,
    as_of: NaiveDate,
    sample: usize,
) -> Result<SegmentScore> {
    let features = SegmentFeatures::compute(data, Some(as_of), Some(&model.meta.categories))
        .map_err(segmenting("computing the segmentation features"))?;
    score_segments_on(model, &features, sample)
}

/// [`score_segments`] on features already computed (they must hold the
/// model's features).
pub fn score_segments_on(
    model: &SegmentModel,
    features: &SegmentFeatures,
    sample: usize,
) -> Result<SegmentScore> {
    let run = || -> std::result::Result<SegmentScore, SegmentError> {
        // Every customer is assigned (a bad value anywhere is reported,
        // with its row, before anything is scaled); only the sampled ones
        // are scaled for the silhouette.
        let assigned = model.assign_features(features)?;
        let rows = sample_rows(features.n_customers(), sample);
        let xs = model.scaled_rows(features, &rows)?;
        let labels: Vec<usize> = rows.iter().map(|&i| assigned[i].0).collect();
        let names = model.names();
        let mut sizes = BTreeMap::new();
        for (id, _) in &assigned {
            let name = names.get(*id).cloned().unwrap_or_else(|| id.to_string());
            *sizes.entry(name).or_insert(0) += 1;
        }
        Ok(SegmentScore {
            silhouette: silhouette_score(xs.view(), &labels),
            k: model.k(),
            customers: features.n_customers(),
            sample_rows: rows.len(),
            sizes,
        })
    };
    run().map_err(segmenting("scoring a segment model"))
}

/// What [`evaluate_live`] found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub as_of: NaiveDate,
    pub customer_spend: Option<serde_json::Value>,
    pub segments: Option<serde_json::Value>,
    /// What came back from the warehouse (`None`: a Parquet folder).
    pub fetched: Option<Fetched>,
}

/// `analytics evaluate`: score the live versions on `data` (customer_spend
/// on the out-of-time test set, segments by silhouette). `data`: a
/// [`JobData`] or a Parquet folder's path.
pub fn evaluate_live(
    data: impl Into<JobData>,
    models: &Path,
    as_of: Option<NaiveDate>,
) -> Result<Evaluation> {
    let data = data.into();
    let reg = Registry::open(models)?;
    let spend = load_live_spend(&reg)?;
    let segs = load_live_segments(&reg)?;
    if spend.is_none() && segs.is_none() {
        return Err(RegistryError::NoLive {
            model: format!("{SPEND} (nor {SEGMENTS}) in {}", models.display()),
        }
        .into());
    }
    let before = data.fetched();
    let input = data
        .source()
        .job_input(as_of, |at| vec![test_cutoff(at), at])
        .map_err(|e| source_error(&data, e.into_source()))?;
    let fetched = data.fetched_since(before);
    let sales = input.features();
    let as_of = as_of.unwrap_or_else(|| sales.default_as_of());
    let cutoff = test_cutoff(as_of);
    let customer_spend = match spend {
        Some(live) => {
            let m = score_spend(&live.model, sales, cutoff)?;
            Some(json!({
                "model": live.model.kind().name(),
                "version": live.version.id,
                "rmse": m.rmse,
                "mae": m.mae,
                "r2": m.r2,
                "n": m.n,
                "test_cutoff": cutoff,
            }))
        }
        None => None,
    };
    let segments = match segs {
        Some(live) => {
            let s = score_segments(&live.model, sales, as_of, DEFAULT_SILHOUETTE_SAMPLE)?;
            Some(json!({
                "version": live.version.id,
                "silhouette": s.silhouette,
                "k": s.k,
                "customers": s.customers,
                "sample_rows": s.sample_rows,
                "sizes": s.sizes,
                "as_of": as_of,
            }))
        }
        None => None,
    };
    Ok(Evaluation {
        as_of,
        customer_spend,
        segments,
        fetched,
    })
}
