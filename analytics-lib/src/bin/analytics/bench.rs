//! `analytics bench`: the pipeline benchmark (shared/spec/benchmark.md),
//! each stage timed and its own memory peak measured.

use analytics_lib::process::{CpuUse, measure, proc_status_bytes};

use super::*;

/// Peak resident memory of this process (VmHWM), in bytes.
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM:")
}

/// Resident memory of this process now (VmRSS), in bytes.
pub(crate) fn rss_bytes() -> Option<u64> {
    proc_status_bytes("VmRSS:")
}

/// The benchmark's memory per stage: the resident memory a stage starts
/// from, and its own peak (the process peak is reset with Linux
/// `clear_refs` 5 before it; where that is refused the stage's peak is
/// unknown and reported as null rather than as the peak so far).
/// Each stage's CPU time (user, system) and minor page faults as well.
#[derive(Default)]
struct StagePeaks {
    peak: serde_json::Map<String, serde_json::Value>,
    before: serde_json::Map<String, serde_json::Value>,
    cpu: serde_json::Map<String, serde_json::Value>,
}

impl StagePeaks {
    fn measure<T>(&mut self, stage: &str, run: impl FnOnce() -> Result<T>) -> Result<T> {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        self.before
            .insert(stage.to_string(), serde_json::json!(rss_bytes()));
        let (out, _, cpu) = measure(run);
        let out = out?;
        let peak = if reset { peak_rss_bytes() } else { None };
        self.peak.insert(stage.to_string(), serde_json::json!(peak));
        self.record_cpu(stage, cpu);
        Ok(out)
    }

    fn record_cpu(&mut self, stage: &str, cpu: Option<CpuUse>) {
        self.cpu.insert(stage.to_string(), serde_json::json!(cpu));
    }

    /// The whole run's peak: the largest stage peak, or the process peak
    /// when it is larger (no reset, or work between the stages).
    fn overall(&self) -> Option<u64> {
        let stages = self.peak.values().filter_map(|v| v.as_u64()).max();
        stages.max(peak_rss_bytes())
    }
}

pub(crate) fn run_bench(args: BenchArgs) -> Result<()> {
    use analytics_lib::kpi::{self, Filter, KpiOptions};
    use analytics_lib::models::{TrainParams, train_all};
    let total = Instant::now();
    let mut seconds = serde_json::Map::new();
    let mut rows = serde_json::Map::new();
    let mut peaks = StagePeaks::default();

    // The stages of `shared/spec/interfaces.md`, timed as the reference
    // stack (bench/reference.py) times them: `load` reads and validates,
    // `clean` is final cleaning, `kpis` includes the join into sales lines
    // (`join` and `kpi_compute` are reported apart as well).
    // Destructured from the temporary: the cleaned tables are dropped here.
    let analytics_lib::source::Prepared {
        sales,
        rows: table_rows,
        timings,
        ..
    } = peaks.measure("prepare", || prepare(&args.data))?;
    let sales_bytes = sales.estimated_size();
    let part = |x: f64| serde_json::json!(x);
    seconds.insert("load".into(), part(timings.load));
    seconds.insert("clean".into(), part(timings.clean));
    seconds.insert("join".into(), part(timings.join));
    peaks.record_cpu("load", timings.load_cpu);
    peaks.record_cpu("clean", timings.clean_cpu);
    peaks.record_cpu("join", timings.join_cpu);
    for (name, n) in table_rows {
        rows.insert(name.to_string(), serde_json::json!(n));
    }
    let t_kpi = Instant::now();
    let k = peaks.measure("kpis", || {
        Ok(kpi::kpis(&sales, &Filter::all(), &KpiOptions::default())?)
    })?;
    let kpi_compute = t_kpi.elapsed().as_secs_f64();
    seconds.insert("kpi_compute".into(), part(kpi_compute));
    seconds.insert("kpis".into(), part(timings.join + kpi_compute));

    // The three models through the same train_all the CLI and the retrain
    // job use. Its stage timings: `features` (the training and test
    // cutoffs, as the reference), `train_<model>` (the final fit at the
    // training cutoff, scored on the test cutoff), and the selection the
    // reference does not do, reported apart: `select_features` (the
    // validation cutoff's features) and `select_<model>` (the fit on it).
    let report = peaks.measure("train", || {
        train_all(&sales, None, &TrainParams::default()).context("while training")
    })?;
    for (name, cpu) in &report.cpu {
        peaks.record_cpu(name, Some(*cpu));
    }
    let stage = |key: &str| serde_json::json!(report.seconds.get(key).copied());
    seconds.insert("features".into(), stage("features"));
    seconds.insert("select_features".into(), stage("select_features"));
    for kind in ["linear", "random_forest", "xgboost"] {
        seconds.insert(format!("train_{kind}"), stage(&format!("train_{kind}")));
        seconds.insert(format!("select_{kind}"), stage(&format!("select_{kind}")));
    }
    let mut metrics = serde_json::Map::new();
    for (name, m) in report.test_metrics() {
        metrics.insert(
            name,
            serde_json::json!({"rmse": m.rmse, "mae": m.mae, "r2": m.r2}),
        );
    }
    rows.insert(
        "customers_train".into(),
        serde_json::json!(report.rows.train),
    );
    rows.insert("customers_test".into(), serde_json::json!(report.rows.test));
    // Segmentation: RFM features at as_of, standardised (recency, log1p F,
    // log1p M) (`segment_features`, as the reference's stage), then KMeans
    // k = 5, one init, ≤ 100 iterations (`kmeans`: the clustering alone).
    let km = peaks.measure("segments", || {
        let t = Instant::now();
        let seg_features = analytics_lib::segments::SegmentFeatures::compute(&sales, None, None)
            .context("while computing the segmentation features")?;
        let x = analytics_lib::segments::kmeans_fixed_input(&seg_features)
            .context("while standardising the KMeans features")?;
        seconds.insert("segment_features".into(), part(t.elapsed().as_secs_f64()));
        let t = Instant::now();
        let km = analytics_lib::segments::kmeans_fixed_on(
            &x,
            &analytics_lib::segments::FixedKMeans::default(),
        )
        .context("while running KMeans")?;
        seconds.insert("kmeans".into(), part(t.elapsed().as_secs_f64()));
        Ok(km)
    })?;
    rows.insert("customers_kmeans".into(), serde_json::json!(km.customers));
    seconds.insert(
        "total".into(),
        serde_json::json!(total.elapsed().as_secs_f64()),
    );
    let out = serde_json::json!({
        "rows": rows,
        "seconds": seconds,
        "metrics": metrics,
        "revenue": k.revenue,
        "peak_rss_bytes": peaks.overall(),
        "peak_rss_bytes_by_stage": peaks.peak,
        "rss_bytes_before_stage": peaks.before,
        "cpu_by_stage": peaks.cpu,
        "sales_view_bytes": sales_bytes,
        "transparent_huge_pages": analytics_lib::process::transparent_huge_pages_enabled(),
    });
    if args.json {
        return print_json(&out);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
