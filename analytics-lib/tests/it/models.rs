//! Customer-spend features and regression models (feature `models`).
//!
//! Features on the committed fixture are checked against values worked out
//! by hand; the models against a known linear law, against the naive
//! baseline on generated data, and through save → load.

use std::sync::{Mutex, MutexGuard, OnceLock};

use analytics_lib::clean::clean;
use analytics_lib::data::CuratedFrames;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::load;
use analytics_lib::features::{FeatureMatrix, TARGET, customer_features, feature_names};
use analytics_lib::kpi::Sales;
use analytics_lib::models::{
    FORMAT_VERSION, ForestParams, Hyperparameters, LinearParams, Metrics, ModelError, ModelFile,
    ModelKind, ModelMeta, TrainParams, TrainReport, TrainedModel, ValidationSplit, XgbParams,
    train_all,
};
use analytics_lib::polars::prelude::*;
use chrono::NaiveDate;
use tempfile::TempDir;

use crate::helpers::{assert_mentions, tiny};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn sales_of(frames: &CuratedFrames) -> Sales {
    Sales::from_frames(&clean(frames).expect("clean").frames).expect("sales")
}

#[track_caller]
fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} != {b} (tolerance {tol})");
}

/// One customer's row of a features frame, by column name.
fn row_of(frame: &DataFrame, customer: &str) -> Vec<(String, f64)> {
    let ids = frame
        .column("customer_id")
        .expect("customer_id")
        .str()
        .expect("str")
        .clone();
    let i = ids
        .iter()
        .position(|c| c == Some(customer))
        .unwrap_or_else(|| panic!("{customer} not in the features"));
    frame
        .columns()
        .iter()
        .filter(|c| c.name().as_str() != "customer_id")
        .map(|c| {
            let v = c.get(i).expect("cell").extract::<f64>().expect("number");
            (c.name().to_string(), v)
        })
        .collect()
}

#[track_caller]
fn assert_row(frame: &DataFrame, customer: &str, expected: &[(&str, f64)]) {
    let got = row_of(frame, customer);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want, "columns of {customer}");
    for ((n, g), (_, e)) in got.iter().zip(expected) {
        assert!(
            (g - e).abs() < 1e-9,
            "{customer}.{n}: got {g}, expected {e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Features on the fixture.
//
// Cutoff T = 2024-10-03, so the 90-day window is [2024-07-05, 2024-10-03)
// and the target window [2024-10-03, 2025-01-01). Completed orders (see
// kpi.rs for each order's revenue; cleaning drops o02's lines 2–3 and o05's
// lines 2–3, canceled o04 and returned o06 do not count):
//
// * c01: o01 2024-01-10 = 500 eletronicos + 2×50×0.9 = 90 beleza_saude (590);
//   o02 2024-03-05 = 80 brinquedos; after T: o11 2024-12-01 = 80.
// * c07: o20 2024-10-02 23:59:59 = 40 livros_papelaria (one second before
//   T's day); after T: o09 2024-11-29 = 528.
// * c03: o05 2024-08-10 = 150 moda_acessorios; o18 2024-10-03 00:00:00 = 40 is
//   ON the cutoff day, so it is target, not feature.
// * c04: o19 2024-07-05 00:00:00 = 50 beleza_saude, exactly on the window's
//   inclusive start (o06 was returned).
// * c02 (o03 2024-02-15 = 120 and o17 2024-06-05 = 40, both before the
//   90-day window; o21 = 90 after T) and c06 (o12 2024-07-10 = 80, inside it)
//   are the others seen before T; c05 and c08 buy only after T, so they have no row.
//
// Categories of completed lines before T, sorted: beleza_saude, brinquedos,
// eletronicos, livros_papelaria, moda_acessorios.

fn fixture_categories() -> Vec<String> {
    [
        "beleza_saude",
        "brinquedos",
        "eletronicos",
        "livros_papelaria",
        "moda_acessorios",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn features_on_the_fixture_match_hand_computed_values() {
    let sales = sales_of(&tiny());
    let f = customer_features(&sales, d(2024, 10, 3), None).expect("features");
    assert_eq!(f.categories, fixture_categories());
    assert_eq!(
        f.customer_ids().expect("ids"),
        ["c01", "c02", "c03", "c04", "c06", "c07"]
    );

    // c01: last order 2024-03-05 → 2024-10-03 is 26 (rest of March) + 30 + 31
    // + 30 + 31 + 31 + 30 (April–September) + 3 = 212 days; first order
    // 2024-01-10 → 21 (rest of January) + 29 (leap February) + 212 + 5 (March
    // 1–5) = 267 days. Two orders, 590 + 80 = 670, ticket 335. Nothing in
    // [2024-07-05, T). Shares: beleza 90/670, brinquedos 80/670, eletronicos
    // 500/670. Target: o11 = 80.
    assert_row(
        &f.frame,
        "c01",
        &[
            ("recency_days", 212.0),
            ("frequency", 2.0),
            ("monetary", 670.0),
            ("tenure_days", 267.0),
            ("average_ticket", 335.0),
            ("orders_90d", 0.0),
            ("revenue_90d", 0.0),
            ("share_beleza_saude", 90.0 / 670.0),
            ("share_brinquedos", 80.0 / 670.0),
            ("share_eletronicos", 500.0 / 670.0),
            ("share_livros_papelaria", 0.0),
            ("share_moda_acessorios", 0.0),
            (TARGET, 80.0),
        ],
    );
    // c07: one order dated 2024-10-02 → recency = tenure = 1 day; 40 of
    // livros (share 1), all of it in the last 90 days. Target: o09 = 528.
    assert_row(
        &f.frame,
        "c07",
        &[
            ("recency_days", 1.0),
            ("frequency", 1.0),
            ("monetary", 40.0),
            ("tenure_days", 1.0),
            ("average_ticket", 40.0),
            ("orders_90d", 1.0),
            ("revenue_90d", 40.0),
            ("share_beleza_saude", 0.0),
            ("share_brinquedos", 0.0),
            ("share_eletronicos", 0.0),
            ("share_livros_papelaria", 1.0),
            ("share_moda_acessorios", 0.0),
            (TARGET, 528.0),
        ],
    );
    // Edges: c03's o18 at 00:00 on T is target (40), not history; c04's o19 at
    // 00:00 on T − 90 d is inside the 90-day window (recency exactly 90).
    let c03 = row_of(&f.frame, "c03");
    let c04 = row_of(&f.frame, "c04");
    let get = |r: &[(String, f64)], n: &str| {
        r.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .expect("column")
    };
    assert_eq!(get(&c03, "frequency"), 1.0);
    assert_eq!(get(&c03, "recency_days"), 54.0); // 2024-08-10 → 2024-10-03
    assert_eq!(get(&c03, TARGET), 40.0);
    assert_eq!(get(&c04, "recency_days"), 90.0);
    assert_eq!(get(&c04, "orders_90d"), 1.0);
    assert_eq!(get(&c04, "revenue_90d"), 50.0);

    // The baseline is revenue_90d; the matrix follows feature_names().
    assert_eq!(
        f.baseline().expect("baseline"),
        [0.0, 0.0, 150.0, 50.0, 80.0, 40.0]
    );
    let x = f.matrix().expect("matrix");
    assert_eq!(x.names(), feature_names(&f.categories).as_slice());
    assert_eq!((x.n_rows(), x.n_cols()), (6, 12));
    assert_eq!(x.row(0)[0], 212.0);
}

#[test]
fn features_refuse_an_unsorted_category_list_and_an_empty_history() {
    let sales = sales_of(&tiny());
    let unsorted = ["b".to_string(), "a".to_string()];
    let e = customer_features(&sales, d(2024, 10, 3), Some(&unsorted))
        .expect_err("unsorted")
        .to_string();
    assert_mentions(&e, &["categories", "sorted"]);
    let e = customer_features(&sales, d(2023, 1, 1), None)
        .expect_err("nothing before")
        .to_string();
    assert_mentions(&e, &["cutoff", "2023-01-01", "no completed order"]);
}

/// Apply `f` to one table's column, only on rows whose `order_id` is `order`.
fn edit(df: &DataFrame, order: &str, column: &str, value: Expr) -> DataFrame {
    df.clone()
        .lazy()
        .with_column(
            when(col("order_id").eq(lit(order)))
                .then(value)
                .otherwise(col(column))
                .alias(column),
        )
        .collect()
        .expect("edit")
}

#[test]
fn features_never_see_orders_on_or_after_the_cutoff() {
    let cutoff = d(2024, 10, 3);
    let before = customer_features(&sales_of(&tiny()), cutoff, None).expect("features");

    // Rewrite the future: c01's o11 (2024-12-01) buys 50 instead of 2, c07's
    // o09 (2024-11-29) switches to a product of another category, and o18,
    // at 00:00 on the cutoff day itself, gets canceled.
    let mut changed = tiny();
    changed.order_items = edit(
        &changed.order_items,
        "o11",
        "quantity",
        lit(50).cast(DataType::Int32),
    );
    changed.order_items = edit(&changed.order_items, "o09", "product_id", lit("p05"));
    changed.orders = edit(&changed.orders, "o18", "status", lit("canceled"));
    let after = customer_features(&sales_of(&changed), cutoff, None).expect("features");

    let features =
        |f: &analytics_lib::features::CustomerFeatures| f.frame.drop(TARGET).expect("drop target");
    assert_eq!(after.categories, before.categories);
    assert!(
        features(&after).equals_missing(&features(&before)),
        "features changed:\nbefore {}\nafter {}",
        before.frame,
        after.frame
    );
    // The target does see the change: c01 now spends 50 × 40 = 2000.
    let t = |f: &analytics_lib::features::CustomerFeatures| f.target().expect("target");
    assert_eq!(t(&before)[0], 80.0);
    assert_eq!(t(&after)[0], 2000.0);
    assert_eq!(t(&after)[2], 0.0, "c03's o18 was canceled");
}

// ---------------------------------------------------------------------------
// Models on small synthetic data.

/// A deterministic pseudo-random number in [0, 1) (splitmix64).
fn unit(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// y = 3 + 2·x1 − x2, exactly, on 60 rows.
fn linear_law() -> (FeatureMatrix, Vec<f64>) {
    let rows: Vec<Vec<f64>> = (0..60)
        .map(|i| vec![10.0 * unit(2 * i), 5.0 * unit(2 * i + 1) - 2.0])
        .collect();
    let y = rows.iter().map(|r| 3.0 + 2.0 * r[0] - r[1]).collect();
    let x = FeatureMatrix::from_rows(vec!["x1".into(), "x2".into()], &rows).expect("matrix");
    (x, y)
}

#[test]
fn ols_recovers_a_linear_law() {
    let (x, y) = linear_law();
    let m = LinearParams::new()
        .check()
        .expect("valid")
        .fit(&x, &y)
        .expect("fit");
    close(m.intercept(), 3.0, 1e-9);
    let c = m.coefficients();
    close(c[0], 2.0, 1e-9);
    close(c[1], -1.0, 1e-9);
    let pred = m.predict(&x).expect("predict");
    let metrics = Metrics::compute(&y, &pred).expect("metrics");
    assert!(metrics.rmse < 1e-9 && metrics.mae < 1e-9, "{metrics:?}");
    close(metrics.r2, 1.0, 1e-12);
}

#[test]
fn ols_survives_collinear_features() {
    // x3 = x1 + x2 and a constant column: the design is rank-deficient; the
    // redundant columns get coefficient 0 and the law is still recovered.
    let (x, y) = linear_law();
    let rows: Vec<Vec<f64>> = (0..x.n_rows())
        .map(|i| {
            let r = x.row(i);
            vec![r[0], r[1], r[0] + r[1], 7.0]
        })
        .collect();
    let names = ["x1", "x2", "x3", "c"].map(String::from).to_vec();
    let x = FeatureMatrix::from_rows(names, &rows).expect("matrix");
    let m = LinearParams::new().fit(&x, &y).expect("fit");
    assert_eq!(m.coefficients()[2..], [0.0, 0.0]);
    close(m.intercept(), 3.0, 1e-9);
    let pred = m.predict(&x).expect("predict");
    for (p, t) in pred.iter().zip(&y) {
        close(*p, *t, 1e-9);
    }
}

#[test]
fn xgboost_starts_from_the_mean_target() {
    // The xgb crate would send base_score = 0.5; we pass mean(y), so one tiny
    // boosting step stays next to the mean.
    let (x, y) = linear_law();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let m = XgbParams::new()
        .rounds(1)
        .learning_rate(1e-6)
        .threads(Some(1))
        .fit(&x, &y)
        .expect("fit");
    assert_eq!(m.base_score(), mean as f32);
    for p in m.predict(&x).expect("predict") {
        close(p, mean, 1e-3);
    }
}

#[test]
fn invalid_hyperparameters_are_errors_not_panics() {
    let cases: Vec<(Hyperparameters, &[&str])> = vec![
        (
            LinearParams::new().collinearity_tolerance(f64::NAN).into(),
            &["linear", "collinearity_tolerance", "[0, 1)", "NaN"],
        ),
        (
            ForestParams::new().n_trees(0).into(),
            &["random_forest", "n_trees", "at least 1", "0"],
        ),
        (
            ForestParams::new().max_depth(Some(0)).into(),
            &["random_forest", "max_depth", "found 0"],
        ),
        (
            ForestParams::new().n_trees(3).parts(4).into(),
            &["random_forest", "parts", "between 1 and n_trees (3)", "4"],
        ),
        (
            XgbParams::new().learning_rate(1.5).into(),
            &["xgboost", "learning_rate", "(0, 1]", "1.5"],
        ),
        (
            XgbParams::new().subsample(0.0).into(),
            &["xgboost", "subsample", "found 0"],
        ),
        (
            XgbParams::new().threads(Some(0)).into(),
            &["xgboost", "threads"],
        ),
    ];
    let (x, y) = linear_law();
    for (hp, needles) in cases {
        let e = hp.check().expect_err("invalid").to_string();
        assert_mentions(&e, needles);
        // fit checks too
        assert!(matches!(
            hp.fit(&x, &y),
            Err(ModelError::InvalidParameter { .. })
        ));
    }
    let e = ForestParams::new()
        .max_features(Some(9))
        .fit(&x, &y)
        .expect_err("more features than there are")
        .to_string();
    assert_mentions(
        &e,
        &["max_features", "at most the number of features (2)", "9"],
    );
}

#[test]
fn bad_training_data_is_an_error() {
    let (x, mut y) = linear_law();
    let e = LinearParams::new()
        .fit(&x, &y[..10])
        .expect_err("short y")
        .to_string();
    assert_mentions(&e, &["targets", "one target per row (60)", "10 targets"]);
    y[3] = f64::NAN;
    let e = XgbParams::new()
        .fit(&x, &y)
        .expect_err("NaN target")
        .to_string();
    assert_mentions(&e, &["finite", "NaN at row 3"]);
    let nan = FeatureMatrix::new(
        vec!["x1".into(), "x2".into()],
        vec![1.0, 2.0, f64::INFINITY, 4.0],
    )
    .expect("matrix");
    let e = ForestParams::new()
        .fit(&nan, &[1.0, 2.0])
        .expect_err("inf")
        .to_string();
    assert_mentions(&e, &["finite", "inf in `x1`, row 1"]);
}

// ---------------------------------------------------------------------------
// Saved models: round trip and refusals.

fn small_model() -> TrainedModel {
    let (x, y) = linear_law();
    let hp: Hyperparameters = LinearParams::new().into();
    let model = hp.fit(&x, &y).expect("fit");
    TrainedModel {
        meta: ModelMeta {
            format_version: FORMAT_VERSION,
            kind: ModelKind::Linear,
            hyperparameters: hp,
            feature_names: x.names().to_vec(),
            categories: vec![],
            train_cutoff: d(2024, 1, 1),
            horizon_days: 90,
            train_rows: x.n_rows(),
            data_fingerprint: "test".into(),
            metrics: Default::default(),
            intervals: None,
            code_version: "test".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
        },
        model,
    }
}

#[test]
fn loading_refuses_another_feature_list() {
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("m.msgpack");
    small_model().save(&path).expect("save");
    let other = ["x1".to_string(), "x3".to_string()];
    let e = TrainedModel::load_expecting(&path, &other)
        .expect_err("other features")
        .to_string();
    assert_mentions(
        &e,
        &[
            "expected 2 features [x1, x3]",
            "found 2 [x1, x2]",
            "position 1: expected `x3`, found `x2`",
        ],
    );
    let e = TrainedModel::load_expecting(&path, &["x1".to_string()])
        .expect_err("fewer features")
        .to_string();
    assert_mentions(&e, &["expected 1 features", "unexpected `x2`"]);
    // The same list loads; predicting with columns in another order does not.
    let m = TrainedModel::load_expecting(&path, &["x1".to_string(), "x2".to_string()])
        .expect("same features");
    let swapped = FeatureMatrix::new(vec!["x2".into(), "x1".into()], vec![1.0, 2.0]).expect("m");
    let e = m.predict(&swapped).expect_err("swapped").to_string();
    assert_mentions(&e, &["position 0: expected `x1`, found `x2`"]);
}

#[test]
fn loading_refuses_a_truncated_or_altered_file() {
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("m.msgpack");
    small_model().save(&path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let cut = tmp.path().join("cut.msgpack");
    for keep in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..keep]).expect("write");
        let e = TrainedModel::load(&cut).expect_err("truncated");
        assert!(
            matches!(e, ModelError::Truncated { .. }),
            "{keep} bytes: {e}"
        );
        assert_mentions(
            &e.to_string(),
            &["cut.msgpack", "truncated", &format!("found {keep} bytes")],
        );
    }
    // Not a model at all.
    std::fs::write(&cut, b"{\"not\": \"a model\"}").expect("write");
    let e = TrainedModel::load(&cut).expect_err("json").to_string();
    assert_mentions(
        &e,
        &["cut.msgpack", "not a readable model artifact", "expected"],
    );
    // One flipped bit in the payload: the checksum catches it.
    let mut file = ModelFile::read(&path).expect("raw");
    let last = file.payload.0.len() - 1;
    file.payload.0[last] ^= 1;
    file.write(&cut).expect("write");
    let e = TrainedModel::load(&cut).expect_err("altered").to_string();
    assert_mentions(&e, &["checksum", "altered"]);
    // A missing file names the path.
    let e = TrainedModel::load(&tmp.path().join("nope.msgpack"))
        .expect_err("missing")
        .to_string();
    assert_mentions(&e, &["nope.msgpack", "reading the model file"]);
}

#[test]
fn loading_refuses_another_format_version() {
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("m.msgpack");
    small_model().save(&path).expect("save");
    let mut file = ModelFile::read(&path).expect("raw");
    assert_eq!(file.meta.format_version, FORMAT_VERSION);
    file.meta.format_version = FORMAT_VERSION + 98;
    let old = tmp.path().join("future.msgpack");
    file.write(&old).expect("write");
    let e = TrainedModel::load(&old).expect_err("version");
    assert!(matches!(e, ModelError::FormatVersion { .. }), "{e}");
    assert_mentions(
        &e.to_string(),
        &[
            "future.msgpack",
            "format version",
            &format!("expected {FORMAT_VERSION}; found {}", FORMAT_VERSION + 98),
        ],
    );
}

// ---------------------------------------------------------------------------
// Training on generated data (~100k lines, no defects), shared by the tests
// below: generating and training once keeps the suite fast.

struct Trained {
    _dir: TempDir,
    sales: Sales,
    report: TrainReport,
}

fn trained() -> MutexGuard<'static, Trained> {
    static CELL: OnceLock<Mutex<Trained>> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = TempDir::new().expect("tmp");
        let cfg = GeneratorConfig {
            lines: 100_000,
            seed: 7,
            defect_rate: 0.0,
            ..GeneratorConfig::default()
        };
        generate(&cfg, dir.path()).expect("generate");
        let frames = load(dir.path()).expect("load").collect().expect("collect");
        let sales = sales_of(&frames);
        let params = TrainParams {
            candidates: vec![
                LinearParams::new().into(),
                ForestParams::new()
                    .n_trees(40)
                    .max_depth(Some(8))
                    .min_samples_leaf(5)
                    .max_features(Some(6))
                    .seed(11)
                    .into(),
                XgbParams::new()
                    .rounds(150)
                    .max_depth(4)
                    .learning_rate(0.05)
                    .seed(11)
                    .threads(Some(2))
                    .into(),
                // A second, weaker XGBoost candidate: selection must pick by
                // validation score.
                XgbParams::new()
                    .rounds(3)
                    .max_depth(1)
                    .learning_rate(0.05)
                    .seed(11)
                    .threads(Some(2))
                    .into(),
            ],
            ..TrainParams::default()
        };
        let report = train_all(&sales, None, &params).expect("train");
        Mutex::new(Trained {
            _dir: dir,
            sales,
            report,
        })
    })
    .lock()
    .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn forest_and_xgboost_beat_the_naive_baseline() {
    let t = trained();
    let r = &t.report;
    eprintln!(
        "rows {:?}\nbaseline {:?}\n{:#?}",
        r.rows,
        r.baseline_test,
        r.test_metrics()
    );
    assert_eq!(r.train_cutoff, r.as_of - chrono::Duration::days(180));
    assert_eq!(r.test_cutoff, r.as_of - chrono::Duration::days(90));
    assert!(matches!(
        r.validation_split,
        ValidationSplit::OutOfTime { cutoff, .. } if cutoff == r.train_cutoff
    ));
    // Stage timings as the benchmark reports them: the validation split's
    // features apart from the training and test cutoffs'.
    for stage in [
        "features",
        "select_features",
        "train_linear",
        "select_linear",
        "train_random_forest",
        "train_xgboost",
    ] {
        let s = r.seconds.get(stage).copied();
        assert!(
            matches!(s, Some(x) if x >= 0.0),
            "{stage}: {s:?} in {:?}",
            r.seconds
        );
    }
    assert!(
        r.rows.train > 1_000 && r.rows.test > r.rows.train / 2,
        "{:?}",
        r.rows
    );
    let test = r.test_metrics();
    let baseline = test["baseline"].rmse;
    for kind in [ModelKind::RandomForest, ModelKind::Xgboost] {
        let m = &test[kind.name()];
        assert!(
            m.rmse < baseline,
            "{kind}: RMSE {} is not below the baseline's {baseline}",
            m.rmse
        );
        assert!(m.r2 > 0.0, "{kind}: R² {}", m.r2);
    }
    // Selection kept the better XGBoost candidate (by validation), and the
    // best kind is the one with the lowest validation RMSE.
    let xgb = r.model(ModelKind::Xgboost).expect("xgboost");
    assert!(matches!(&xgb.meta.hyperparameters, Hyperparameters::Xgboost(p) if p.rounds == 150));
    // The four given candidates and the training mean, always added.
    assert_eq!(r.candidates.len(), 5);
    let best_validation = r
        .models
        .iter()
        .min_by(|a, b| {
            a.meta.metrics["validation"]
                .rmse
                .total_cmp(&b.meta.metrics["validation"].rmse)
        })
        .expect("models");
    assert_eq!(r.best, best_validation.kind());
    // Every model carries its provenance.
    for m in &r.models {
        assert_eq!(m.meta.feature_names, r.feature_names);
        assert_eq!(m.meta.categories, r.categories);
        assert_eq!(m.meta.data_fingerprint, r.data_fingerprint);
        assert!(m.meta.metrics.contains_key("validation") && m.meta.metrics.contains_key("test"));
        assert_eq!(m.meta.format_version, FORMAT_VERSION);
    }
}

#[test]
fn every_kind_predicts_bit_identically_after_save_and_load() {
    let t = trained();
    let r = &t.report;
    let x = customer_features(&t.sales, r.test_cutoff, Some(&r.categories))
        .expect("features")
        .matrix()
        .expect("matrix");
    let tmp = TempDir::new().expect("tmp");
    assert_eq!(r.models.len(), 4);
    for m in &r.models {
        let path = tmp.path().join(format!("{}.msgpack", m.kind()));
        m.save(&path).expect("save");
        let loaded = TrainedModel::load_expecting(&path, &r.feature_names).expect("load");
        assert_eq!(loaded.meta, m.meta);
        let (a, b) = (
            m.predict(&x).expect("predict"),
            loaded.predict(&x).expect("predict loaded"),
        );
        assert_eq!(a.len(), x.n_rows());
        let differ = a
            .iter()
            .zip(&b)
            .filter(|(p, q)| p.to_bits() != q.to_bits())
            .count();
        assert_eq!(differ, 0, "{}: {differ} predictions differ", m.kind());
        // Saving the loaded model gives the same bytes.
        assert_eq!(
            loaded.to_bytes().expect("bytes"),
            m.to_bytes().expect("bytes"),
            "{}",
            m.kind()
        );
    }
}

#[test]
fn saved_models_are_checked_against_their_own_features() {
    // Metadata that claims other features than the model was fitted on.
    let t = trained();
    let m = t.report.model(ModelKind::Xgboost).expect("xgboost");
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("x.msgpack");
    let mut file = m.to_file().expect("file");
    file.meta.feature_names.swap(0, 1);
    file.write(&path).expect("write");
    let e = TrainedModel::load(&path).expect_err("mismatch").to_string();
    assert_mentions(&e, &["position 0", "recency_days", "frequency"]);
    let mut file = t
        .report
        .model(ModelKind::RandomForest)
        .expect("rf")
        .to_file()
        .expect("file");
    file.meta.feature_names.pop();
    file.write(&path).expect("write");
    let e = TrainedModel::load(&path).expect_err("count").to_string();
    assert_mentions(&e, &["random_forest", "features (from the metadata)"]);
}

/// Timings on a bigger data set, by hand:
/// `ANALYTICS_TRAIN_DATA=/path/to/curated cargo test --release -p analytics-lib
/// --features models --test it -- --ignored --nocapture train_all_on_a_data_folder`.
#[test]
#[ignore = "needs ANALYTICS_TRAIN_DATA; prints timings"]
fn train_all_on_a_data_folder() {
    let Some(dir) = std::env::var_os("ANALYTICS_TRAIN_DATA") else {
        eprintln!("ANALYTICS_TRAIN_DATA is not set: nothing to do");
        return;
    };
    let t = std::time::Instant::now();
    let frames = load(std::path::Path::new(&dir))
        .expect("load")
        .collect()
        .expect("collect");
    let sales = sales_of(&frames);
    eprintln!("load + clean + sales: {:.2} s", t.elapsed().as_secs_f64());
    let report = train_all(&sales, None, &TrainParams::default()).expect("train");
    eprintln!(
        "rows {:?}\nseconds {:#?}\ntest {:#?}\nbest {}",
        report.rows,
        report.seconds,
        report.test_metrics(),
        report.best
    );
}

#[test]
fn permutation_importance_ranks_the_feature_that_matters() {
    use analytics_lib::features::FeatureMatrix;
    use analytics_lib::models::{LinearParams, permutation_importance};
    // y = 5·x1 + 0·x2: shuffling x1 hurts, shuffling x2 does not.
    let rows: Vec<Vec<f64>> = (0..200)
        .map(|i| vec![(i % 17) as f64, ((i * 7) % 13) as f64])
        .collect();
    let y: Vec<f64> = rows.iter().map(|r| 5.0 * r[0]).collect();
    let x = FeatureMatrix::from_rows(vec!["x1".into(), "x2".into()], &rows).expect("matrix");
    let model = analytics_lib::models::Hyperparameters::from(LinearParams::default())
        .fit(&x, &y)
        .expect("fit");
    let imp = permutation_importance(&model, &x, &y, 3, 1_000, 7).expect("importance");
    assert_eq!(imp[0].feature, "x1");
    assert!(imp[0].rmse_increase > 10.0, "{imp:?}");
    assert!(imp[1].rmse_increase.abs() < 1e-6, "{imp:?}");
}

/// Every model carries intervals calibrated on the validation cutoff; their
/// coverage on the (never seen) test cutoff is within 3 points of the
/// nominal level for the fitted models.
#[test]
fn intervals_are_saved_with_each_model_and_cover_the_test_cutoff() {
    let t = trained();
    let r = &t.report;
    eprintln!("{:#?}", r.coverage);
    for m in &r.models {
        let iv = m.meta.intervals.as_ref().expect("intervals");
        let c = iv.test_coverage.expect("test coverage");
        assert_eq!(r.coverage[m.kind().name()], c);
        assert_eq!(c.n, r.rows.test);
        assert!(iv.calibration_rows == r.rows.validation, "{iv:?}");
        if m.kind() != ModelKind::TrainingMean {
            assert!((c.coverage_80 - 0.80).abs() <= 0.03, "{}: {c:?}", m.kind());
            assert!((c.coverage_95 - 0.95).abs() <= 0.03, "{}: {c:?}", m.kind());
        }
        // The intervals hold the prediction and widen with the level.
        let [i80, i95] = iv.intervals(150.0);
        assert!(
            i95.low <= i80.low && i80.high <= i95.high,
            "{i80:?} {i95:?}"
        );
        assert!(i80.low >= 0.0);
    }
    assert!(r.coverage.contains_key("baseline"));
}

/// Models that learnt nothing (targets shuffled) do not beat the training
/// mean on validation: the mean is served, and the report says so.
#[test]
fn validation_serves_the_training_mean_when_nothing_beats_it() {
    use analytics_lib::models::{TrainOptions, train_all_with};
    let t = trained();
    let params = TrainParams {
        candidates: vec![
            LinearParams::new().into(),
            ForestParams::new().n_trees(20).seed(3).into(),
        ],
        ..TrainParams::default()
    };
    let r = train_all_with(
        &t.sales,
        None,
        &params,
        &TrainOptions {
            shuffle_training_targets: Some(5),
        },
    )
    .expect("train");
    assert_eq!(r.best, ModelKind::TrainingMean, "{}", r.selection);
    assert_mentions(
        &r.selection,
        &["no model beat the training mean", "training mean is served"],
    );
    let mean = r.model(ModelKind::TrainingMean).expect("mean model");
    assert!(matches!(
        mean.model,
        analytics_lib::models::Regressor::TrainingMean(_)
    ));
    // It saves and loads like any model.
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("training_mean.msgpack");
    mean.save(&path).expect("save");
    let back = TrainedModel::load_expecting(&path, &r.feature_names).expect("load");
    assert_eq!(back.meta, mean.meta);
}
