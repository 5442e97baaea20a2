//! Timings of the segmentation stages on a curated data folder, for the
//! closing note of the segmentation work (`shared/spec/benchmark.md` data):
//!
//! ```text
//! target/release/analytics generate --lines 1M --seed 42 --out target/bench-data/1M
//! cargo run --release -p analytics-lib --example segments_bench -- target/bench-data/1M
//! ```
//!
//! Stages, each timed on its own (the data is prepared once by
//! [`Source::prepare`], as every job does, untimed):
//!
//! * `features` — [`SegmentFeatures::compute`] (RFM, average ticket, shares);
//! * `kmeans_k5` — the benchmark's KMeans: [`kmeans_fixed`] (k = 5 on
//!   standardised recency, log1p frequency, log1p monetary; one init;
//!   ≤ 100 iterations), best of 3 repeats; `features + kmeans_k5` is what
//!   compares with scikit-learn's figure, which includes its feature step;
//! * `silhouette_search` — [`fit_segments`] with the default
//!   [`SegmentParams`] (the k search, silhouette on a sample, names, profiles);
//! * `tsne` — [`views::tsne`] with the default [`TsneParams`] (stratified
//!   sample of ≤ 5,000 customers);
//! * `dbscan` — [`DbscanParams::fit`] with the defaults, on a seeded sample of
//!   `DBSCAN_SAMPLE` customers (default: all of them), `eps` from the
//!   k-distance curve included (also timed on its own);
//! * `dbscan_linfa` (not in the default) — linfa's DBSCAN, the
//!   implementation before the grid index, with the same `eps`, and whether
//!   its labels equal the grid's.
//!
//! `STAGES=kmeans,search,tsne,dbscan` (the default) picks stages. The
//! last line is one JSON object with every figure measured.

use std::path::PathBuf;
use std::time::Instant;

use analytics_lib::segments::views::{self, TsneParams};
use analytics_lib::segments::{
    DbscanParams, FixedKMeans, Scaler, SegmentFeatures, SegmentParams, dbscan_linfa, fit_segments,
    kmeans_fixed, suggest_eps,
};
use analytics_lib::source::Source;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: segments_bench DATA_FOLDER (e.g. target/bench-data/1M)")?,
    );
    let stages = std::env::var("STAGES").unwrap_or_else(|_| "kmeans,search,tsne,dbscan".into());
    let on = |s: &str| stages.split(',').any(|x| x.trim() == s);
    let mut out = serde_json::Map::new();
    let dbscan_sample: Option<usize> =
        match std::env::var("DBSCAN_SAMPLE") {
            Ok(s) => Some(s.parse().map_err(|_| {
                format!("DBSCAN_SAMPLE: expected a number of customers, found `{s}`")
            })?),
            Err(_) => None,
        };
    let t = Instant::now();
    let sales = Source::parquet(&dir).prepare()?.sales;
    eprintln!(
        "load + clean + join: {:.2} s ({})",
        t.elapsed().as_secs_f64(),
        dir.display()
    );

    let t = Instant::now();
    let features = SegmentFeatures::compute(&sales, None, None)?;
    let features_s = t.elapsed().as_secs_f64();
    println!(
        "features: {} customers × {} features in {features_s:.3} s",
        features.n_customers(),
        features.names().len()
    );
    out.insert("customers".into(), json!(features.n_customers()));
    out.insert("features_s".into(), json!(features_s));

    if on("kmeans") {
        let mut kmeans_s = f64::INFINITY;
        let mut note = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let fixed = kmeans_fixed(&features, &FixedKMeans::default())?;
            kmeans_s = kmeans_s.min(t.elapsed().as_secs_f64());
            note = format!("sizes {:?}, inertia {:.1}", fixed.sizes, fixed.inertia);
        }
        println!(
            "kmeans k = 5, 1 init, ≤ 100 iterations (best of 3): {kmeans_s:.3} s (features + kmeans {:.3} s; {note})",
            features_s + kmeans_s
        );
        out.insert("kmeans_k5_s".into(), json!(kmeans_s));
        out.insert(
            "features_plus_kmeans_k5_s".into(),
            json!(features_s + kmeans_s),
        );
    }

    // The model's scaled features (the same scaler `fit_segments` fits).
    let names = features.names().to_vec();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let raw = features.select(&refs)?;
    let scaled = Scaler::fit_default(&names, &raw, None)?.transform(&raw)?;

    if on("dbscan") {
        let x = match dbscan_sample {
            Some(n) if n < scaled.nrows() => {
                let idx = views::stratified_sample(&vec![0; scaled.nrows()], n, 42);
                scaled.select(ndarray::Axis(0), &idx)
            }
            _ => scaled.clone(),
        };
        let t = Instant::now();
        let db = DbscanParams::default().fit(&x)?;
        let dbscan_s = t.elapsed().as_secs_f64();
        println!(
            "DBSCAN: {} customers, eps {:.3} (from the k-distance curve), min_points {}: {} clusters, {} noise in {dbscan_s:.2} s",
            x.nrows(),
            db.eps,
            db.min_points,
            db.n_clusters,
            db.n_noise
        );
        out.insert("dbscan_s".into(), json!(dbscan_s));
        out.insert("dbscan_rows".into(), json!(x.nrows()));
        out.insert("dbscan_clusters".into(), json!(db.n_clusters));
        out.insert("dbscan_noise".into(), json!(db.n_noise));
        let t = Instant::now();
        let s = suggest_eps(&x, db.min_points, DbscanParams::default().eps_sample, 42)?;
        let eps_s = t.elapsed().as_secs_f64();
        println!(
            "  of which the k-distance curve ({} points): {eps_s:.2} s",
            s.k_distances.len()
        );
        out.insert("dbscan_eps_s".into(), json!(eps_s));
        // DBSCAN_GRID_DIMS=4,8,16: the grid on that many dimensions (same labels).
        if let Ok(list) = std::env::var("DBSCAN_GRID_DIMS") {
            let xs = x.as_standard_layout();
            let flat = xs.as_slice().ok_or("contiguous features")?;
            for m in list.split(',') {
                let m: usize = m
                    .trim()
                    .parse()
                    .map_err(|_| format!("DBSCAN_GRID_DIMS: `{m}`"))?;
                let t = Instant::now();
                let (labels, stats) = analytics_lib::segments::grid::dbscan_with_stats(
                    flat,
                    x.nrows(),
                    x.ncols(),
                    db.eps,
                    db.min_points,
                    m,
                );
                println!(
                    "  grid on {m} dimensions: {:.2} s; same labels: {}; {stats:?}",
                    t.elapsed().as_secs_f64(),
                    labels == db.labels
                );
            }
        }
        if on("dbscan_linfa") {
            let t = Instant::now();
            let labels = dbscan_linfa(&x, db.eps, db.min_points)?;
            let linfa_s = t.elapsed().as_secs_f64();
            let same = labels == db.labels;
            println!(
                "DBSCAN with linfa's k-d tree (the implementation before the grid), same eps: {linfa_s:.2} s (+ the k-distance curve); same labels: {same}"
            );
            out.insert("dbscan_linfa_s".into(), json!(linfa_s));
            out.insert("dbscan_linfa_same_labels".into(), json!(same));
        }
    }

    if on("search") || on("tsne") {
        let t = Instant::now();
        let seg = fit_segments(&features, &SegmentParams::default())?;
        let search_s = t.elapsed().as_secs_f64();
        let p = &SegmentParams::default().kmeans;
        println!(
            "silhouette search k {}..={} ({} inits each, silhouette on {} customers): k = {}, silhouette {:.3}, {search_s:.2} s; {:?}",
            p.k_min,
            p.k_max,
            p.n_runs,
            seg.model.meta.silhouette_rows,
            seg.model.k(),
            seg.model.meta.silhouette.unwrap_or(f64::NAN),
            seg.model.names()
        );
        out.insert("silhouette_search_s".into(), json!(search_s));
        out.insert("chosen_k".into(), json!(seg.model.k()));
        if on("tsne") {
            let labels: Vec<i64> = seg.labels.iter().map(|&l| l as i64).collect();
            let tp = TsneParams::default();
            let t = Instant::now();
            let ts = views::tsne(&seg.scaled, &labels, &tp)?;
            let tsne_s = t.elapsed().as_secs_f64();
            println!(
                "t-SNE: {} customers, {} iterations: {tsne_s:.2} s",
                ts.rows.len(),
                tp.max_iterations
            );
            out.insert("tsne_s".into(), json!(tsne_s));
            out.insert("tsne_rows".into(), json!(ts.rows.len()));
        }
    }

    out.insert("data".into(), json!(dir.display().to_string()));
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
