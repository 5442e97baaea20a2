//! The native histogram random forest: determinism, accuracy against known
//! laws and against smartcore's forest (the oracle it replaced), the
//! stopping rules, and the saved artifact.

use analytics_lib::features::FeatureMatrix;
use analytics_lib::models::trees::Node;
use analytics_lib::models::{
    FORMAT_VERSION, ForestModel, ForestParams, Hyperparameters, Metrics, ModelError, ModelFile,
    ModelKind, ModelMeta, Regressor, TrainedModel,
};
use chrono::NaiveDate;
use tempfile::TempDir;

use crate::helpers::assert_mentions;

/// A deterministic pseudo-random number in [0, 1) (splitmix64).
fn unit(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal draw (Box–Muller on two `unit`s).
fn normal(i: u64) -> f64 {
    let (a, b) = (unit(2 * i).max(1e-300), unit(2 * i + 1));
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

/// `n` rows of `p` features in [0, 1) (feature `p - 1` constant 7 when
/// `constant`), drawn from stream `stream`, and `law` of each row.
fn data(
    n: usize,
    p: usize,
    stream: u64,
    constant: bool,
    law: impl Fn(&[f64], u64) -> f64,
) -> (FeatureMatrix, Vec<f64>) {
    let base = stream << 40;
    let rows: Vec<Vec<f64>> = (0..n as u64)
        .map(|i| {
            (0..p as u64)
                .map(|f| {
                    if constant && f + 1 == p as u64 {
                        7.0
                    } else {
                        unit(base + i * p as u64 + f)
                    }
                })
                .collect()
        })
        .collect();
    let y = rows
        .iter()
        .enumerate()
        .map(|(i, r)| law(r, base + (1 << 38) + i as u64))
        .collect();
    let names = (0..p).map(|f| format!("x{f}")).collect();
    (FeatureMatrix::from_rows(names, &rows).expect("matrix"), y)
}

/// A piecewise-constant law of x0 and x1; x2.. are noise.
fn step(r: &[f64], _: u64) -> f64 {
    let a = if r[0] < 0.3 {
        -5.0
    } else if r[0] < 0.7 {
        2.0
    } else {
        9.0
    };
    a + if r[1] < 0.5 { 0.0 } else { 4.0 }
}

/// A smooth law of x0, x1, x2 with Gaussian noise.
fn smooth(r: &[f64], i: u64) -> f64 {
    (3.0 * r[0]).sin() * 2.0 + r[1] * r[1] * 3.0 - r[2] + 0.5 * normal(i)
}

fn r2(model: &ForestModel, x: &FeatureMatrix, y: &[f64]) -> f64 {
    Metrics::compute(y, &model.predict(x).expect("predict"))
        .expect("metrics")
        .r2
}

fn fit(params: &ForestParams, x: &FeatureMatrix, y: &[f64]) -> ForestModel {
    params.check().expect("valid").fit(x, y).expect("fit")
}

/// Depth (edges from the root) of every node of a tree.
fn depths(nodes: &[Node]) -> Vec<usize> {
    let mut d = vec![0; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if !n.is_leaf() {
            d[n.left as usize] = d[i] + 1;
            d[n.right as usize] = d[i] + 1;
        }
    }
    d
}

fn bytes(model: ForestModel, x: &FeatureMatrix, params: &ForestParams) -> Vec<u8> {
    trained(model, x, params).to_bytes().expect("bytes")
}

fn trained(model: ForestModel, x: &FeatureMatrix, params: &ForestParams) -> TrainedModel {
    TrainedModel {
        meta: ModelMeta {
            format_version: FORMAT_VERSION,
            kind: ModelKind::RandomForest,
            hyperparameters: Hyperparameters::RandomForest(params.clone()),
            feature_names: x.names().to_vec(),
            categories: vec![],
            train_cutoff: NaiveDate::from_ymd_opt(2024, 1, 1).expect("date"),
            horizon_days: 90,
            train_rows: x.n_rows(),
            data_fingerprint: "test".into(),
            metrics: Default::default(),
            intervals: None,
            code_version: "test".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
        },
        model: Regressor::RandomForest(model),
    }
}

#[test]
fn the_same_seed_gives_the_same_forest_whatever_the_threads() {
    let (x, y) = data(1500, 5, 1, false, smooth);
    let params = ForestParams::new().n_trees(12).seed(3);
    let in_pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| fit(&params, &x, &y))
    };
    let one = in_pool(1);
    let two = in_pool(2);
    assert_eq!(one.ensemble(), two.ensemble(), "1 thread vs 2 threads");
    assert_eq!(one, fit(&params, &x, &y), "again on the global pool");
    assert_eq!(one.n_trees(), 12);
    assert_eq!(one.ensemble().scale(), 1.0 / 12.0);
    assert_eq!(one.ensemble().base(), 0.0);
    // `parts` no longer changes anything.
    assert_eq!(one, fit(&params.clone().parts(5), &x, &y));
    // Identical model bytes.
    assert_eq!(
        bytes(one.clone(), &x, &params),
        bytes(two, &x, &params),
        "saved bytes"
    );
    // Another seed grows other trees.
    let other = fit(&params.clone().seed(4), &x, &y);
    assert_ne!(one.ensemble(), other.ensemble());
    // Tree t of seed s is tree t − 1 of seed s + 1 (seed + tree index).
    let shifted = fit(&params.clone().seed(2), &x, &y);
    assert_eq!(shifted.ensemble().trees()[1], one.ensemble().trees()[0]);
}

#[test]
fn a_piecewise_constant_law_is_recovered() {
    let (x, y) = data(3000, 4, 2, true, step);
    let (xt, yt) = data(2000, 4, 3, true, step);
    let m = fit(&ForestParams::new().n_trees(30), &x, &y);
    let (train, test) = (r2(&m, &x, &y), r2(&m, &xt, &yt));
    assert!(train > 0.99 && test > 0.99, "R² train {train}, test {test}");
    // The constant feature (x3) is never split on.
    let on_constant = m
        .ensemble()
        .trees()
        .iter()
        .flatten()
        .filter(|n| !n.is_leaf() && n.feature == 3)
        .count();
    assert_eq!(on_constant, 0, "splits on the constant feature");
    // Root splits are on x0 near 0.3 or 0.7, or on x1 near 0.5.
    for t in m.ensemble().trees() {
        let (f, th) = (t[0].feature, t[0].threshold);
        let near = |c: f64| (th - c).abs() < 0.01;
        assert!(
            (f == 0 && (near(0.3) || near(0.7))) || (f == 1 && near(0.5)),
            "root split x{f} < {th}"
        );
    }
}

#[test]
fn a_noisy_smooth_law_is_fitted_as_well_as_smartcore_does() {
    use smartcore::ensemble::random_forest_regressor::{
        RandomForestRegressor, RandomForestRegressorParameters,
    };
    use smartcore::linalg::basic::matrix::DenseMatrix;

    let (x, y) = data(4000, 6, 4, false, smooth);
    let (xt, yt) = data(3000, 6, 5, false, smooth);
    let params = ForestParams::new()
        .n_trees(50)
        .max_depth(Some(10))
        .min_samples_leaf(5);
    let ours = r2(&fit(&params, &x, &y), &xt, &yt);

    let dense = |x: &FeatureMatrix| {
        DenseMatrix::new(x.n_rows(), x.n_cols(), x.values().to_vec(), false).expect("dense")
    };
    let sc = RandomForestRegressor::<f64, f64, DenseMatrix<f64>, Vec<f64>>::fit(
        &dense(&x),
        &y,
        RandomForestRegressorParameters {
            max_depth: Some(11), // smartcore counts the root as depth 1
            min_samples_leaf: 5,
            min_samples_split: 2,
            n_trees: 50,
            m: Some(6),
            keep_samples: false,
            seed: 42,
        },
    )
    .expect("smartcore fit");
    let theirs = Metrics::compute(&yt, &sc.predict(&dense(&xt)).expect("smartcore predict"))
        .expect("metrics")
        .r2;
    eprintln!("R² on fresh rows: ours {ours:.4}, smartcore {theirs:.4}");
    assert!(ours >= theirs - 0.02, "ours {ours} vs smartcore {theirs}");
    // The noise (σ 0.5) caps R²; a forest that learnt nothing would be ≤ 0.
    assert!(ours > 0.7, "R² {ours}");
}

#[test]
fn stopping_rules_are_respected() {
    let (x, y) = data(2000, 3, 6, false, smooth);
    for (leaf, split, depth) in [
        (1, 2, None),
        (5, 2, Some(4)),
        (20, 60, Some(10)),
        (3, 2, Some(1)),
    ] {
        let params = ForestParams::new()
            .n_trees(8)
            .min_samples_leaf(leaf)
            .min_samples_split(split)
            .max_depth(depth);
        let m = fit(&params, &x, &y);
        for (t, nodes) in m.ensemble().trees().iter().enumerate() {
            let d = depths(nodes);
            let max = d.iter().copied().max().unwrap_or(0);
            if let Some(limit) = depth {
                assert!(max <= usize::from(limit), "tree {t}: depth {max} > {limit}");
                assert!(
                    max == usize::from(limit),
                    "tree {t}: depth {max}, noisy data should reach {limit}"
                );
            }
            for (i, n) in nodes.iter().enumerate() {
                if n.is_leaf() {
                    assert!(
                        n.cover >= leaf as f64,
                        "tree {t} leaf {i}: cover {} < {leaf}",
                        n.cover
                    );
                } else {
                    assert!(
                        n.cover >= split as f64,
                        "tree {t} node {i}: split with cover {} < {split}",
                        n.cover
                    );
                    let (l, r) = (nodes[n.left as usize], nodes[n.right as usize]);
                    assert_eq!(
                        l.cover + r.cover,
                        n.cover,
                        "tree {t} node {i}: covers add up"
                    );
                }
            }
            // The bootstrap sample has n draws.
            assert_eq!(nodes[0].cover, 2000.0, "tree {t}: root cover");
        }
    }
    // A constant target gives one leaf per tree, with that value.
    let flat = vec![12.5; x.n_rows()];
    let m = fit(&ForestParams::new().n_trees(4), &x, &flat);
    for nodes in m.ensemble().trees() {
        assert_eq!(nodes.len(), 1);
        assert!((nodes[0].value - 12.5).abs() < 1e-12, "{}", nodes[0].value);
    }
    assert!(
        m.predict(&x)
            .expect("predict")
            .iter()
            .all(|p| (p - 12.5).abs() < 1e-12)
    );
}

#[test]
fn fewer_features_per_split_still_fit_and_stay_deterministic() {
    let (x, y) = data(2000, 6, 7, false, smooth);
    let (xt, yt) = data(1000, 6, 8, false, smooth);
    let params = ForestParams::new().n_trees(30).max_features(Some(2));
    let a = fit(&params, &x, &y);
    assert_eq!(a, fit(&params, &x, &y));
    assert_ne!(a, fit(&params.clone().max_features(None), &x, &y));
    let score = r2(&a, &xt, &yt);
    assert!(score > 0.5, "R² {score}");
}

#[test]
fn batch_predictions_equal_single_rows() {
    let (x, y) = data(3000, 4, 9, false, smooth);
    let m = fit(&ForestParams::new().n_trees(10), &x, &y);
    let (xt, _) = data(5000, 4, 10, false, smooth);
    let batch = m.predict(&xt).expect("predict");
    assert_eq!(batch.len(), 5000);
    // The batch (blocked, parallel walk) equals one row at a time, bit for bit.
    for (i, a) in batch.iter().enumerate() {
        let one = m.ensemble().predict_row(xt.row(i)).expect("row");
        assert_eq!(a.to_bits(), one.to_bits(), "row {i}: {a} vs {one}");
    }
    for i in [0, 1, 2_047, 2_048, 4_999] {
        // Contributions add up to the prediction.
        let mut c = vec![0.0; 4];
        let bias = m
            .ensemble()
            .contributions(xt.row(i), &mut c)
            .expect("contributions");
        assert!((bias + c.iter().sum::<f64>() - batch[i]).abs() < 1e-9);
    }
    // A single row, below the parallel threshold, too.
    let few = FeatureMatrix::new(xt.names().to_vec(), xt.row(7).to_vec()).expect("one row");
    assert_eq!(m.predict(&few).expect("predict"), vec![batch[7]]);
}

#[test]
fn bad_input_is_an_error_naming_what_was_expected() {
    let (x, y) = data(50, 3, 11, false, smooth);
    let e = ForestParams::new()
        .max_features(Some(4))
        .fit(&x, &y)
        .expect_err("max_features > p")
        .to_string();
    assert_mentions(
        &e,
        &["max_features", "at most the number of features (3)", "4"],
    );
    let e = ForestParams::new()
        .fit(&x, &y[..49])
        .expect_err("short y")
        .to_string();
    assert_mentions(&e, &["one target per row (50)", "49 targets"]);
    let mut bad = y.clone();
    bad[3] = f64::NAN;
    let e = ForestParams::new()
        .fit(&x, &bad)
        .expect_err("NaN y")
        .to_string();
    assert_mentions(&e, &["targets", "finite", "row 3"]);
    let mut v = x.values().to_vec();
    v[4] = f64::INFINITY;
    let xi = FeatureMatrix::new(x.names().to_vec(), v).expect("matrix");
    let e = ForestParams::new()
        .fit(&xi, &y)
        .expect_err("inf x")
        .to_string();
    assert_mentions(&e, &["finite", "x1", "row 1"]);
    let m = fit(&ForestParams::new().n_trees(2), &x, &y);
    let narrow = FeatureMatrix::new(vec!["a".into()], vec![1.0]).expect("matrix");
    let e = m.predict(&narrow).expect_err("width").to_string();
    assert_mentions(&e, &["3 columns", "1 columns"]);
    // One row is enough to fit (a single leaf).
    let one = FeatureMatrix::new(x.names().to_vec(), x.row(0).to_vec()).expect("row");
    let m = fit(&ForestParams::new().n_trees(3), &one, &[4.0]);
    assert_eq!(m.predict(&one).expect("predict"), vec![4.0]);
}

#[test]
fn a_saved_forest_loads_and_predicts_identically_and_old_versions_are_refused() {
    let (x, y) = data(2000, 4, 12, false, smooth);
    let params = ForestParams::new().n_trees(15);
    let m = fit(&params, &x, &y);
    let expected = m.predict(&x).expect("predict");
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("random_forest.msgpack");
    let t = trained(m.clone(), &x, &params);
    t.save(&path).expect("save");
    let loaded = TrainedModel::load(&path).expect("load");
    let Regressor::RandomForest(lm) = &loaded.model else {
        panic!("not a forest: {:?}", loaded.kind());
    };
    assert_eq!(lm, &m, "the same trees");
    let got = loaded.predict(&x).expect("predict");
    assert!(
        got.iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(
        loaded.to_bytes().expect("bytes"),
        t.to_bytes().expect("bytes")
    );

    // The file of the previous layout (version 1, smartcore's forest) is
    // refused by version, before its payload is read.
    assert_eq!(FORMAT_VERSION, 2);
    let mut file = ModelFile::read(&path).expect("raw");
    file.meta.format_version = 1;
    let old = tmp.path().join("v1.msgpack");
    file.write(&old).expect("write");
    let e = TrainedModel::load(&old).expect_err("old version");
    assert!(
        matches!(
            e,
            ModelError::FormatVersion {
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{e}"
    );
    assert_mentions(&e.to_string(), &["v1.msgpack", "expected 2; found 1"]);
}

/// The forest payload's layout, as saved (a column per node field).
mod layout {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Payload {
        RandomForest(Forest),
    }
    #[derive(Serialize, Deserialize)]
    pub struct Forest {
        pub n_features: usize,
        pub trees: Vec<Tree>,
    }
    #[derive(Serialize, Deserialize)]
    pub struct Tree {
        pub feature: Vec<u32>,
        pub threshold: Vec<f64>,
        pub left: Vec<u32>,
        pub right: Vec<u32>,
        pub value: Vec<f64>,
        pub cover: Vec<f64>,
    }
}

#[test]
fn a_tampered_saved_forest_is_refused_with_the_place() {
    use analytics_lib::models::artifact::{Bytes, Fnv64};

    let (x, y) = data(300, 3, 13, false, smooth);
    let params = ForestParams::new().n_trees(2);
    let m = fit(&params, &x, &y);
    let tmp = TempDir::new().expect("tmp");
    let path = tmp.path().join("rf.msgpack");
    trained(m.clone(), &x, &params).save(&path).expect("save");
    let file = ModelFile::read(&path).expect("raw");
    let layout::Payload::RandomForest(saved) =
        rmp_serde::from_slice(&file.payload.0).expect("the documented layout");
    assert_eq!(saved.n_features, 3);
    assert_eq!(saved.trees.len(), 2);
    assert_eq!(saved.trees[1].left.len(), m.ensemble().trees()[1].len());

    let rewrite = |edit: &dyn Fn(&mut layout::Forest), name: &str| -> ModelError {
        let layout::Payload::RandomForest(mut f) =
            rmp_serde::from_slice(&file.payload.0).expect("layout");
        edit(&mut f);
        let payload = rmp_serde::to_vec_named(&layout::Payload::RandomForest(f)).expect("encode");
        let mut h = Fnv64::default();
        h.write(&payload);
        let mut bad = file.clone();
        bad.checksum = h.finish();
        bad.payload = Bytes(payload);
        let p = tmp.path().join(name);
        bad.write(&p).expect("write");
        TrainedModel::load(&p).expect_err(name)
    };
    // A child pointing back at the root: refused, naming the node.
    let e = rewrite(&|f| f.trees[1].left[0] = 0, "cycle.msgpack").to_string();
    assert_mentions(&e, &["cycle.msgpack", "tree 1, node 0"]);
    // Columns of different lengths.
    let e = rewrite(
        &|f| {
            f.trees[0].cover.pop();
        },
        "short.msgpack",
    )
    .to_string();
    assert_mentions(&e, &["short.msgpack", "tree 0"]);
    // No trees at all.
    let e = rewrite(&|f| f.trees.clear(), "empty.msgpack").to_string();
    assert_mentions(&e, &["empty.msgpack", "at least one tree"]);
}

/// Timing on a matrix shaped like the 1M-line benchmark's (150k customers,
/// 7 numeric features and 15 category shares, mostly 0 or 1):
/// `cargo test --release --workspace --test it -- forest::timing --ignored --nocapture`.
#[test]
#[ignore = "timing; prints seconds"]
fn timing() {
    let law = |r: &[f64], i: u64| r[0] * 300.0 + r[2] * 100.0 * r[8] + 200.0 * normal(i).abs();
    let (x0, y) = data(150_000, 22, 20, false, law);
    // Shares: 0 or 1 for most rows.
    let v: Vec<f64> = x0
        .values()
        .chunks(22)
        .flat_map(|r| {
            let mut r = r.to_vec();
            for s in r.iter_mut().skip(7) {
                *s = if *s < 0.8 {
                    0.0
                } else if *s < 0.95 {
                    1.0
                } else {
                    (*s * 100.0).fract()
                };
            }
            r
        })
        .collect();
    let x = FeatureMatrix::new(x0.names().to_vec(), v).expect("matrix");
    let t = std::time::Instant::now();
    let m = fit(&ForestParams::new(), &x, &y);
    let fit_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let p = m.predict(&x).expect("predict");
    let pred_s = t.elapsed().as_secs_f64();
    eprintln!(
        "fit {fit_s:.3} s, predict {pred_s:.3} s ({} nodes), R² {:.4}",
        m.ensemble().n_nodes(),
        Metrics::compute(&y, &p).expect("metrics").r2
    );
}
