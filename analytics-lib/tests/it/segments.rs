//! Customer segmentation (feature `segments`).
//!
//! KMeans against planted blobs (adjusted Rand index, k by silhouette), the
//! naming rules, DBSCAN against planted outliers, save → load → assign,
//! the loader's refusals, and the whole pipeline on generated data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use analytics_lib::clean::clean;
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::data::load;
use analytics_lib::features::FeatureMatrix;
use analytics_lib::kpi::Sales;
use analytics_lib::models::ModelError;
use analytics_lib::segments::views::{self, TsneParams};
use analytics_lib::segments::{
    DbscanParams, FixedKMeans, KMeansParams, MigrationMatrix, NOISE_ID, RfmTiers, SegmentError,
    SegmentFeatures, SegmentFile, SegmentModel, SegmentParams, SegmentStats, Tier, TierCuts,
    adjusted_rand_index, base_name, dbscan_grid, dbscan_linfa, dbscan_profiles, fit_segments,
    kmeans_fixed, lloyd, lloyd_linfa, marketing_action, name_groups, names_from_stats,
    profiles_frame, segment_customers, stability,
};
use chrono::NaiveDate;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use tempfile::TempDir;

use crate::helpers::assert_mentions;

/// `per` points around each centre (Gaussian, `sd`), labels = centre index.
fn blobs(centres: &[Vec<f64>], per: usize, sd: f64, seed: u64) -> (Array2<f64>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, sd).expect("normal");
    let d = centres[0].len();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (c, centre) in centres.iter().enumerate() {
        for _ in 0..per {
            values.extend(centre.iter().map(|m| m + noise.sample(&mut rng)));
            labels.push(c as i64);
        }
    }
    (
        Array2::from_shape_vec((labels.len(), d), values).expect("shape"),
        labels,
    )
}

fn as_i64(labels: &[usize]) -> Vec<i64> {
    labels.iter().map(|&l| l as i64).collect()
}

#[test]
fn kmeans_recovers_planted_blobs_and_silhouette_picks_their_number() {
    let centres = vec![
        vec![0.0, 0.0, 0.0],
        vec![8.0, 0.0, 0.0],
        vec![0.0, 8.0, 0.0],
        vec![0.0, 0.0, 8.0],
    ];
    let (x, truth) = blobs(&centres, 150, 0.7, 1);
    let search = KMeansParams::new()
        .k_range(2, 8)
        .n_runs(4)
        .seed(3)
        .fit(&x)
        .expect("kmeans");
    assert_eq!(search.best.k, 4, "elbow/silhouette: {:?}", search.curve);
    assert_eq!(search.curve.len(), 7);
    let ks: Vec<usize> = search.curve.iter().map(|s| s.k).collect();
    assert_eq!(ks, (2..=8).collect::<Vec<_>>());
    // The elbow curve falls with k.
    assert!(search.curve[0].inertia > search.curve[2].inertia);
    let ari = adjusted_rand_index(&truth, &as_i64(&search.best.labels)).expect("ari");
    assert!(ari >= 0.95, "adjusted Rand index {ari}");
    // Same seed, same clusters.
    let again = KMeansParams::new()
        .k_range(2, 8)
        .n_runs(4)
        .seed(3)
        .fit(&x)
        .expect("kmeans");
    assert_eq!(again.best.labels, search.best.labels);
}

#[test]
fn silhouette_on_a_sample_still_picks_the_planted_k() {
    let centres = vec![vec![0.0, 0.0], vec![10.0, 0.0], vec![5.0, 9.0]];
    let (x, truth) = blobs(&centres, 1_000, 1.0, 2);
    let search = KMeansParams::new()
        .k_range(2, 5)
        .n_runs(2)
        .silhouette_sample(500)
        .fit(&x)
        .expect("kmeans");
    assert_eq!(search.silhouette_rows, 500);
    assert_eq!(search.best.k, 3, "{:?}", search.curve);
    let ari = adjusted_rand_index(&truth, &as_i64(&search.best.labels)).expect("ari");
    assert!(ari >= 0.95, "adjusted Rand index {ari}");
}

#[test]
fn adjusted_rand_index_is_one_for_renamed_labels_and_low_for_chance() {
    let a = [0, 0, 1, 1, 2, 2];
    assert!((adjusted_rand_index(&a, &[5, 5, 9, 9, 1, 1]).expect("ari") - 1.0).abs() < 1e-12);
    let ari = adjusted_rand_index(&a, &[0, 1, 2, 0, 1, 2]).expect("ari");
    assert!(ari < 0.1, "{ari}");
}

#[test]
fn invalid_kmeans_parameters_are_errors_not_panics() {
    let e = KMeansParams::new()
        .k_range(5, 3)
        .check()
        .expect_err("k_max < k_min");
    assert_mentions(
        &e.to_string(),
        &["k_max", "expected at least k_min (5)", "found 3"],
    );
    let e = KMeansParams::new().n_runs(0).check().expect_err("no run");
    assert_mentions(&e.to_string(), &["n_runs"]);
    let x = Array2::from_shape_vec((3, 1), vec![0.0, 1.0, 2.0]).expect("shape");
    let e = KMeansParams::new().k(5).fit(&x).expect_err("too few rows");
    assert_mentions(&e.to_string(), &["at least 5 rows", "found 3 rows"]);
}

// ---------------------------------------------------------------------------
// Naming.

fn tiers(recency: Tier, frequency: Tier, monetary: Tier) -> RfmTiers {
    RfmTiers {
        recency,
        frequency,
        monetary,
        ticket: Tier::Mid,
    }
}

#[test]
fn naming_rules_follow_the_tiers() {
    use Tier::*;
    assert_eq!(base_name(&tiers(High, High, High)), "Champions");
    assert_eq!(base_name(&tiers(Mid, High, Mid)), "Loyal");
    assert_eq!(base_name(&tiers(High, High, Mid)), "Loyal");
    assert_eq!(base_name(&tiers(High, Low, Low)), "Promising/New");
    assert_eq!(base_name(&tiers(High, Mid, High)), "Promising/New");
    assert_eq!(base_name(&tiers(Low, High, High)), "At risk");
    assert_eq!(base_name(&tiers(Low, Mid, High)), "At risk");
    assert_eq!(base_name(&tiers(Low, Mid, Low)), "Lost");
    assert_eq!(base_name(&tiers(Mid, Mid, High)), "Big spenders");
    assert_eq!(base_name(&tiers(Mid, Low, Low)), "Hibernating");
    assert_eq!(base_name(&tiers(Low, Mid, Mid)), "Hibernating");
    // Q(0.4) and Q(0.6); tiers only strictly past them, so ties stay mid.
    let t = TierCuts::of(&[1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0]);
    assert_eq!((t.low, t.high), (1.0, 1.0));
    assert_eq!(t.tier(1.0), Mid);
    assert_eq!(t.tier(2.0), High);
    // Linear interpolation: 0.4 × 5 = 2 → 20; 0.6 × 5 = 3 → 30.
    let r = TierCuts::of(&[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
    assert!((r.low - 20.0).abs() < 1e-12 && (r.high - 30.0).abs() < 1e-12);
    assert_eq!(r.recency_tier(15.0), High, "fewer days = recent");
    assert_eq!(r.recency_tier(35.0), Low, "more days = lapsed");
    assert_eq!(r.recency_tier(25.0), Mid);
}

fn stats(size: usize, t: RfmTiers, monetary: f64, category: &str) -> SegmentStats {
    SegmentStats {
        size,
        median_recency_days: 30.0,
        median_frequency: 3.0,
        median_monetary: monetary,
        median_ticket: monetary / 3.0,
        spend_top_share: 0.1,
        top_category: Some(category.into()),
        tiers: t,
    }
}

#[test]
fn alike_segments_are_told_apart_by_what_differs_and_ids_do_not_matter() {
    use Tier::*;
    let champ = tiers(High, High, High);
    let mut big_ticket = champ;
    big_ticket.ticket = High;
    let segs = vec![
        stats(100, tiers(Low, Mid, Low), 50.0, "moda"),
        stats(200, champ, 900.0, "eletronicos"),
        stats(150, big_ticket, 2_000.0, "eletronicos"),
        stats(120, champ, 950.0, "moda"),
        stats(300, tiers(Mid, Low, Low), 60.0, "moda"),
        stats(310, tiers(Low, Low, Mid), 70.0, "moda"),
    ];
    let names = names_from_stats(&segs);
    assert_eq!(
        names,
        [
            "Lost",
            "Champions · mid ticket · top category eletronicos",
            "Champions · high ticket",
            "Champions · mid ticket · top category moda",
            "Hibernating · low value",
            "Hibernating · mid value",
        ]
    );
    // Every permutation of the ids gives every segment the same name.
    let perms: [[usize; 6]; 4] = [
        [5, 4, 3, 2, 1, 0],
        [2, 0, 4, 1, 5, 3],
        [1, 2, 3, 4, 5, 0],
        [3, 5, 0, 2, 1, 4],
    ];
    for perm in perms {
        let permuted: Vec<SegmentStats> = perm.iter().map(|&i| segs[i].clone()).collect();
        let got = names_from_stats(&permuted);
        for (slot, &i) in perm.iter().enumerate() {
            assert_eq!(got[slot], names[i], "permutation {perm:?}");
        }
    }
    // Alike on every tier and category: the spend, then the size, tell them apart.
    let twins = vec![
        stats(100, champ, 900.0, "moda"),
        SegmentStats {
            spend_top_share: 0.25,
            ..stats(100, champ, 900.0, "moda")
        },
        SegmentStats {
            size: 90,
            ..stats(100, champ, 900.0, "moda")
        },
    ];
    let names = names_from_stats(&twins);
    assert_eq!(
        names,
        [
            "Champions · top 10% spend · 100 customers",
            "Champions · top 25% spend",
            "Champions · top 10% spend · 90 customers",
        ]
    );
}

// ---------------------------------------------------------------------------
// Planted RFM customers.

const CATS: [&str; 2] = ["eletronicos", "moda"];

/// Four planted groups of customers in original units: (recency, frequency,
/// monetary, share of eletronicos), `per` customers each, plus `outliers`
/// very big spenders.
fn planted_customers(per: usize, outliers: usize) -> (SegmentFeatures, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let jitter = Normal::new(0.0, 1.0).expect("normal");
    let mut z = || jitter.sample(&mut rng);
    // (recency, freq, monetary, share), relative spreads
    let groups: [(f64, f64, f64, f64); 4] = [
        (30.0, 20.0, 9_000.0, 0.8),  // champions
        (700.0, 1.0, 60.0, 0.2),     // lost
        (30.0, 1.0, 150.0, 0.5),     // new
        (450.0, 12.0, 6_000.0, 0.7), // at risk
    ];
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for (g, (r, f, m, s)) in groups.iter().enumerate() {
        for _ in 0..per {
            let rec = (r * (1.0 + 0.1 * z())).max(0.0).round();
            let freq: f64 = (f * (1.0 + 0.1 * z())).round().max(1.0);
            let mon = m * (1.0 + 0.1 * z());
            let share = (s + 0.05 * z()).clamp(0.0, 1.0);
            rows.push(vec![rec, freq, mon, mon / freq, share, 1.0 - share]);
            truth.push(g as i64);
        }
    }
    for i in 0..outliers {
        let freq = 400.0 + 50.0 * i as f64;
        let mon = 2_000_000.0 * (1.0 + i as f64);
        rows.push(vec![300.0, freq, mon, mon / freq, 0.0, 1.0]);
        truth.push(-1);
    }
    let categories: Vec<String> = CATS.iter().map(|c| c.to_string()).collect();
    let names = analytics_lib::segments::segment_feature_names(&categories);
    let ids = (0..rows.len()).map(|i| format!("c{i:05}")).collect();
    let matrix = FeatureMatrix::from_rows(names, &rows).expect("matrix");
    let as_of = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    (
        SegmentFeatures::from_parts(as_of, categories, ids, matrix).expect("features"),
        truth,
    )
}

fn planted_params() -> SegmentParams {
    SegmentParams {
        kmeans: KMeansParams::new().k_range(2, 6).n_runs(4).seed(5),
        ..SegmentParams::default()
    }
}

#[test]
fn planted_segments_are_found_and_named_from_the_data() {
    let (features, truth) = planted_customers(120, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    assert_eq!(seg.model.k(), 4, "{:?}", seg.search.curve);
    let ari = adjusted_rand_index(&truth, &as_i64(&seg.labels)).expect("ari");
    assert!(ari >= 0.95, "ARI {ari}");
    let name_of_group = |g: i64| {
        let i = truth.iter().position(|&t| t == g).expect("member");
        seg.model.profiles[seg.labels[i]].name.clone()
    };
    assert_eq!(name_of_group(0), "Champions");
    let lost = name_of_group(1);
    assert!(lost == "Lost" || lost == "Hibernating", "{lost}");
    assert_eq!(name_of_group(2), "Promising/New");
    assert_eq!(name_of_group(3), "At risk");
    // Profiles: sizes add up, shares too, top category of the champions.
    let p = &seg.model.profiles;
    assert_eq!(p.iter().map(|p| p.size).sum::<usize>(), 480);
    assert!((p.iter().map(|p| p.revenue_share).sum::<f64>() - 1.0).abs() < 1e-9);
    let champions = p.iter().find(|p| p.name == "Champions").expect("champions");
    assert_eq!(champions.size, 120);
    assert!((champions.share_customers - 0.25).abs() < 1e-12);
    assert_eq!(champions.top_categories[0].category, "eletronicos");
    assert!(champions.recency_days.median < 40.0);
    assert!(champions.monetary.mean > 7_000.0);
    // Metadata.
    let m = &seg.model.meta;
    assert_eq!(m.k, 4);
    assert_eq!(m.seed, 5);
    assert_eq!(m.customers, 480);
    assert_eq!(m.elbow.len(), 5);
    assert!(m.silhouette.is_some_and(|s| s > 0.5), "{:?}", m.silhouette);
    assert!(m.data_fingerprint.starts_with("fnv1a64:"));
    assert_eq!(
        m.feature_names,
        [
            "recency_days",
            "frequency",
            "monetary",
            "average_ticket",
            "share_eletronicos",
            "share_moda"
        ]
    );
}

#[test]
fn save_load_assign_gives_every_customer_the_same_segment() {
    let (features, _) = planted_customers(80, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let dir = TempDir::new().expect("tmp");
    let path = dir.path().join("segments.msgpack");
    seg.model.save(&path).expect("save");
    let loaded = SegmentModel::load(&path).expect("load");
    assert_eq!(loaded, seg.model);
    let batch = loaded.assign_features(&features).expect("assign");
    let ids: Vec<usize> = batch.iter().map(|a| a.0).collect();
    assert_eq!(ids, seg.labels);
    // One by one, by name, through the API's entry point.
    let names = features.names().to_vec();
    let records: Vec<BTreeMap<String, f64>> = (0..features.n_customers())
        .map(|r| {
            names
                .iter()
                .cloned()
                .zip(features.matrix.row(r).iter().copied())
                .collect()
        })
        .collect();
    let assigned = loaded.assign_batch(&records).expect("batch");
    for (i, a) in assigned.iter().enumerate() {
        assert_eq!(a.segment_id, seg.labels[i] as i64, "customer {i}");
        assert_eq!(a.segment_name, seg.model.profiles[seg.labels[i]].name);
        assert!((a.distance - batch[i].1).abs() < 1e-9);
        assert_eq!(a.profile.size, seg.model.profiles[seg.labels[i]].size);
    }
    // RFM only (no shares): still a segment, and the champions stay champions.
    let mut rfm: BTreeMap<String, f64> = BTreeMap::new();
    rfm.insert("recency_days".into(), 5.0);
    rfm.insert("frequency".into(), 22.0);
    rfm.insert("monetary".into(), 10_000.0);
    assert_eq!(
        loaded.assign(&rfm).expect("assign").segment_name,
        "Champions"
    );
    // Bad requests say what was expected and what was found.
    let mut bad = rfm.clone();
    bad.insert("colour".into(), 1.0);
    let e = loaded.assign(&bad).expect_err("unknown feature");
    assert_mentions(
        &e.to_string(),
        &["unknown feature `colour`", "recency_days"],
    );
    let mut bad = rfm.clone();
    bad.remove("frequency");
    let e = loaded.assign(&bad).expect_err("missing");
    assert_mentions(&e.to_string(), &["`frequency`", "found features"]);
    let mut bad = rfm.clone();
    bad.insert("monetary".into(), f64::NAN);
    let e = loaded.assign_batch(&[rfm.clone(), bad]).expect_err("nan");
    assert_mentions(&e.to_string(), &["record 1", "monetary", "NaN"]);
}

fn saved_model(dir: &Path) -> (std::path::PathBuf, SegmentModel) {
    let (features, _) = planted_customers(40, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let path = dir.join("segments.msgpack");
    seg.model.save(&path).expect("save");
    (path, seg.model)
}

#[test]
fn loading_a_truncated_file_is_a_clear_error() {
    let dir = TempDir::new().expect("tmp");
    let (path, _) = saved_model(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let e = SegmentModel::load(&path).expect_err("truncated");
    assert!(
        matches!(e, SegmentError::Artifact(ModelError::Truncated { .. })),
        "{e:?}"
    );
    assert_mentions(&e.to_string(), &["truncated", "segments.msgpack"]);
}

#[test]
fn loading_another_format_version_is_a_clear_error() {
    let dir = TempDir::new().expect("tmp");
    let (path, _) = saved_model(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    let mut file = SegmentFile::from_bytes(&bytes, &path).expect("decode");
    file.meta.format_version = 99;
    std::fs::write(&path, file.to_bytes().expect("encode")).expect("write");
    let e = SegmentModel::load(&path).expect_err("version");
    assert!(
        matches!(
            e,
            SegmentError::Artifact(ModelError::FormatVersion {
                expected: 1,
                found: 99,
                ..
            })
        ),
        "{e:?}"
    );
    assert_mentions(&e.to_string(), &["expected 1", "found 99"]);
}

#[test]
fn loading_an_altered_file_or_another_feature_list_is_a_clear_error() {
    let dir = TempDir::new().expect("tmp");
    let (path, model) = saved_model(dir.path());
    let other: Vec<String> = ["recency_days", "frequency", "monetary", "average_ticket"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let e = SegmentModel::load_expecting(&path, &other).expect_err("features");
    assert!(
        matches!(
            e,
            SegmentError::Artifact(ModelError::FeatureMismatch { .. })
        ),
        "{e:?}"
    );
    assert_mentions(
        &e.to_string(),
        &["expected 4 features", "found 6", "share_eletronicos"],
    );
    assert!(SegmentModel::load_expecting(&path, &model.meta.feature_names).is_ok());

    let bytes = std::fs::read(&path).expect("read");
    let mut file = SegmentFile::from_bytes(&bytes, &path).expect("decode");
    let last = file.payload.0.len() - 1;
    file.payload.0[last] ^= 0x01;
    std::fs::write(&path, file.to_bytes().expect("encode")).expect("write");
    let e = SegmentModel::load(&path).expect_err("altered");
    assert_mentions(&e.to_string(), &["checksum", "altered"]);

    let mut file = SegmentFile::from_bytes(&bytes, &path).expect("decode");
    file.meta.feature_names.pop();
    std::fs::write(&path, file.to_bytes().expect("encode")).expect("write");
    let e = SegmentModel::load(&path).expect_err("meta and payload disagree");
    assert!(
        matches!(
            e,
            SegmentError::Artifact(ModelError::FeatureMismatch { .. })
        ),
        "{e:?}"
    );
}

// ---------------------------------------------------------------------------
// DBSCAN.

#[test]
fn dbscan_marks_planted_outliers_as_noise() {
    let centres = vec![
        vec![0.0, 0.0, 0.0],
        vec![6.0, 6.0, 0.0],
        vec![0.0, 6.0, 6.0],
    ];
    let (blob, _) = blobs(&centres, 200, 0.5, 4);
    let outliers = [
        [20.0, 20.0, 20.0],
        [-15.0, 0.0, 10.0],
        [10.0, -12.0, -8.0],
        [25.0, -5.0, 3.0],
        [-10.0, 18.0, -14.0],
    ];
    let n = blob.nrows();
    let mut x = Array2::zeros((n + outliers.len(), 3));
    for ((i, j), v) in blob.indexed_iter() {
        x[[i, j]] = *v;
    }
    for (i, o) in outliers.iter().enumerate() {
        for (j, v) in o.iter().enumerate() {
            x[[n + i, j]] = *v;
        }
    }
    let fit = DbscanParams::new().fit(&x).expect("dbscan");
    let s = fit.suggestion.as_ref().expect("eps was suggested");
    assert!(fit.eps > 0.0 && fit.eps < 3.0, "eps {}", fit.eps);
    assert_eq!(s.k_distances.len(), n + outliers.len());
    for i in n..n + outliers.len() {
        assert_eq!(fit.labels[i], None, "outlier {i} is noise");
    }
    assert_eq!(fit.n_clusters, 3, "noise {}", fit.n_noise);
    assert!(fit.n_noise < 30, "noise {}", fit.n_noise);
    let labels = fit.labels_i64();
    assert!(labels[n..].iter().all(|&l| l == -1));
}

#[test]
fn dbscan_noise_is_its_own_named_group_in_the_profiles() {
    let (features, truth) = planted_customers(60, 3);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let fit = DbscanParams::new().fit(&seg.scaled).expect("dbscan");
    let n = truth.len();
    for i in n - 3..n {
        assert_eq!(fit.labels[i], None, "planted big spender {i} is noise");
    }
    let profiles = dbscan_profiles(&features, &seg.model.scaler, &seg.scaled, &fit).expect("p");
    let noise = profiles.last().expect("a noise group");
    assert_eq!(noise.segment_id, NOISE_ID);
    assert_eq!(noise.name, "noise");
    assert_eq!(noise.size, fit.n_noise);
    assert_eq!(profiles.iter().map(|p| p.size).sum::<usize>(), n);
}

/// Labels renumbered by first appearance (noise stays −1): equal
/// canonical forms = the same clustering up to a permutation of the ids.
fn canonical(labels: &[Option<usize>]) -> Vec<i64> {
    let mut seen: BTreeMap<usize, i64> = BTreeMap::new();
    labels
        .iter()
        .map(|l| match l {
            None => -1,
            Some(c) => {
                let next = seen.len() as i64;
                *seen.entry(*c).or_insert(next)
            }
        })
        .collect()
}

/// Issue #17: the grid DBSCAN gives the clusters of the linfa
/// implementation it replaced (kept as the oracle) on ~20k generated
/// customers, with the suggested eps and with a smaller and a larger one.
#[test]
fn dbscan_grid_equals_the_linfa_implementation_on_20k_customers() {
    let dir = TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines: 104_000,
        seed: 42,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let frames = load(dir.path()).expect("load").collect().expect("collect");
    let sales = Sales::from_frames(&clean(&frames).expect("clean").frames).expect("sales");
    let features = SegmentFeatures::compute(&sales, None, None).expect("features");
    assert!(
        features.n_customers() >= 20_000,
        "{} customers",
        features.n_customers()
    );
    let names = features.names().to_vec();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let raw = features.select(&refs).expect("select");
    let scaled = analytics_lib::segments::Scaler::fit_default(&names, &raw, None)
        .expect("scaler")
        .transform(&raw)
        .expect("scaled");
    let params = DbscanParams::new();
    let fit = params.fit(&scaled).expect("dbscan");
    assert!(fit.n_clusters >= 1 && fit.n_noise > 0, "{fit:?}");
    for eps in [fit.eps, fit.eps * 0.5, fit.eps * 1.5] {
        let t = Instant::now();
        let oracle = dbscan_linfa(&scaled, eps, fit.min_points).expect("linfa");
        let linfa_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grid = dbscan_grid(&scaled, eps, fit.min_points).expect("grid");
        let grid_s = t.elapsed().as_secs_f64();
        let clusters = oracle.iter().flatten().max().map_or(0, |m| m + 1);
        let noise = oracle.iter().filter(|l| l.is_none()).count();
        eprintln!(
            "{} customers, eps {eps:.4}, min_points {}: {clusters} clusters, {noise} noise; linfa {linfa_s:.2} s, grid {grid_s:.3} s",
            scaled.nrows(),
            fit.min_points
        );
        assert_eq!(
            oracle.iter().map(|l| l.is_none()).collect::<Vec<_>>(),
            grid.iter().map(|l| l.is_none()).collect::<Vec<_>>(),
            "the same noise at eps {eps}"
        );
        assert_eq!(canonical(&oracle), canonical(&grid), "eps {eps}");
        // In fact the same numbering too (clusters in the order linfa starts them).
        assert_eq!(oracle, grid, "eps {eps}");
    }
    assert_eq!(
        fit.labels,
        dbscan_grid(&scaled, fit.eps, fit.min_points).expect("grid")
    );
}

#[test]
fn dbscan_grid_equals_linfa_on_blobs_with_duplicates_and_borders() {
    // Blobs, exact duplicates, and points on the edge of two clusters.
    let centres = vec![vec![0.0, 0.0, 0.0, 0.0, 0.0], vec![3.0, 0.0, 0.0, 0.0, 1.0]];
    let (blob, _) = blobs(&centres, 300, 0.6, 8);
    let mut rows: Vec<Vec<f64>> = blob.rows().into_iter().map(|r| r.to_vec()).collect();
    for i in 0..40 {
        rows.push(rows[i].clone());
    }
    rows.push(vec![1.5, 0.0, 0.0, 0.0, 0.5]);
    rows.push(vec![40.0, 40.0, 0.0, 0.0, 0.0]);
    let x = Array2::from_shape_vec((rows.len(), 5), rows.concat()).expect("shape");
    for (eps, min_points) in [(0.3, 4), (0.5, 10), (0.8, 5), (1.2, 30), (5.0, 2)] {
        let oracle = dbscan_linfa(&x, eps, min_points).expect("linfa");
        let grid = dbscan_grid(&x, eps, min_points).expect("grid");
        assert_eq!(oracle, grid, "eps {eps}, min_points {min_points}");
    }
}

// ---------------------------------------------------------------------------
// Views.

#[test]
fn pca_and_tsne_views_and_charts() {
    let (features, truth) = planted_customers(60, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let p2 = views::pca(&seg.scaled, 2).expect("pca 2d");
    assert_eq!(p2.coords.dim(), (240, 2));
    let r = &p2.explained_variance_ratio;
    assert!(
        r[0] >= r[1] && r[0] + r[1] <= 1.0 + 1e-9 && r[0] + r[1] > 0.5,
        "{r:?}"
    );
    let p3 = views::pca(&seg.scaled, 3).expect("pca 3d");
    assert_eq!(p3.coords.dim(), (240, 3));
    assert!(p3.explained_variance_ratio.iter().sum::<f64>() >= r[0] + r[1] - 1e-9);
    let names: Vec<String> = seg
        .labels
        .iter()
        .map(|&l| seg.model.profiles[l].name.clone())
        .collect();
    let axes = views::axis_titles(&p2, "PC");
    assert!(
        axes[0].starts_with("PC1 (") && axes[0].contains(','),
        "{axes:?}"
    );
    let html = views::scatter_2d(&p2.coords, &names, "Segments (PCA)", ["PC1", "PC2"])
        .expect("2d")
        .to_inline_html(Some("seg2d"));
    assert_mentions(&html, &["Champions", "\"separators\":\",.\""]);
    let html = views::scatter_3d(
        &p3.coords,
        &names,
        "Segments (PCA, 3D)",
        ["PC1", "PC2", "PC3"],
    )
    .expect("3d")
    .to_inline_html(Some("seg3d"));
    assert_mentions(&html, &["scatter3d", "\"separators\":\",.\"", "At risk"]);
    let svg = views::scatter_svg(&p2.coords, &names, "Segments").expect("svg");
    assert_mentions(&svg, &["<svg", "Champions"]);

    let labels = as_i64(&seg.labels);
    let sample = views::stratified_sample(&labels, 100, 1);
    assert_eq!(sample.len(), 100);
    for g in 0..4 {
        let k = sample.iter().filter(|&&i| labels[i] == g).count();
        assert_eq!(k, 25, "segment {g} gets its share");
    }
    assert_eq!(sample, views::stratified_sample(&labels, 100, 1), "seeded");
    let t = views::tsne(
        &seg.scaled,
        &labels,
        &TsneParams {
            sample: 120,
            max_iterations: 300,
            ..TsneParams::default()
        },
    )
    .expect("tsne");
    assert_eq!(t.coords.dim(), (120, 2));
    assert!(t.coords.iter().all(|v| v.is_finite()));
    let _ = truth;
}

// ---------------------------------------------------------------------------
// The whole pipeline on generated data.

#[test]
fn full_pipeline_on_generated_data() {
    let dir = TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines: 100_000,
        seed: 11,
        defect_rate: 0.0,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let frames = load(dir.path()).expect("load").collect().expect("collect");
    let sales = Sales::from_frames(&clean(&frames).expect("clean").frames).expect("sales");

    let t = Instant::now();
    let params = SegmentParams {
        kmeans: KMeansParams::new().n_runs(3).seed(42),
        ..SegmentParams::default()
    };
    let (features, seg) = segment_customers(&sales, None, &params).expect("segments");
    eprintln!(
        "segments: {} customers, k = {} (silhouette {:?}) in {:.2} s",
        features.n_customers(),
        seg.model.k(),
        seg.model.meta.silhouette,
        t.elapsed().as_secs_f64()
    );
    assert!(features.n_customers() > 1_000);
    assert!((2..=8).contains(&seg.model.k()));
    assert_eq!(seg.labels.len(), features.n_customers());
    let names = seg.model.names();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are unique: {names:?}");
    for p in &seg.model.profiles {
        eprintln!(
            "  {:<16} {:>6} customers  {:>5.1}% revenue  recency {:>5.0} d  frequency {:>4.1}  monetary {:>8.0}  {:?}",
            p.name,
            p.size,
            100.0 * p.revenue_share,
            p.recency_days.median,
            p.frequency.mean,
            p.monetary.median,
            p.top_categories
                .iter()
                .map(|c| c.category.as_str())
                .collect::<Vec<_>>()
        );
        assert!(p.top_categories.len() <= 3);
    }

    // The benchmark's fixed path.
    let t = Instant::now();
    let fixed = kmeans_fixed(&features, &FixedKMeans::default()).expect("fixed");
    eprintln!("kmeans_fixed: {:.3} s", t.elapsed().as_secs_f64());
    assert_eq!(fixed.sizes.len(), 5);
    assert_eq!(fixed.sizes.iter().sum::<usize>(), features.n_customers());
    assert_eq!(
        kmeans_fixed(&features, &FixedKMeans::default())
            .expect("fixed")
            .labels,
        fixed.labels,
        "seeded"
    );

    // DBSCAN on the same scaled features.
    let t = Instant::now();
    let db = DbscanParams::new().fit(&seg.scaled).expect("dbscan");
    eprintln!(
        "dbscan: eps {:.3}, {} clusters, {} noise in {:.2} s",
        db.eps,
        db.n_clusters,
        db.n_noise,
        t.elapsed().as_secs_f64()
    );
    let profiles = dbscan_profiles(&features, &seg.model.scaler, &seg.scaled, &db).expect("p");
    assert_eq!(
        profiles.iter().map(|p| p.size).sum::<usize>(),
        features.n_customers()
    );

    // Views.
    let p2 = views::pca(&seg.scaled, 2).expect("pca");
    assert_eq!(p2.coords.nrows(), features.n_customers());
    let t = Instant::now();
    let ts = views::tsne(
        &seg.scaled,
        &as_i64(&seg.labels),
        &TsneParams {
            sample: 800,
            max_iterations: 300,
            ..TsneParams::default()
        },
    )
    .expect("tsne");
    eprintln!(
        "tsne (800 customers, 300 iterations): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(ts.coords.nrows(), 800);

    // Save, load, assign.
    let path = dir.path().join("segments.msgpack");
    seg.model.save(&path).expect("save");
    let loaded = SegmentModel::load_expecting(&path, features.names()).expect("load");
    let ids: Vec<usize> = loaded
        .assign_features(&features)
        .expect("assign")
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(ids, seg.labels);
}

/// Timing of the benchmark's path on a real data folder (not run by
/// default): `SEGMENTS_BENCH_DATA=/tmp/seg1m cargo test … segments -- --ignored --nocapture`.
#[test]
#[ignore = "timing on a data folder named by SEGMENTS_BENCH_DATA"]
fn kmeans_fixed_timing_on_a_data_folder() {
    let Ok(dir) = std::env::var("SEGMENTS_BENCH_DATA") else {
        eprintln!("SEGMENTS_BENCH_DATA not set: nothing to time");
        return;
    };
    let frames = load(Path::new(&dir))
        .expect("load")
        .collect()
        .expect("collect");
    let sales = Sales::from_frames(&clean(&frames).expect("clean").frames).expect("sales");
    for _ in 0..3 {
        let t = Instant::now();
        let features = SegmentFeatures::compute(&sales, None, None).expect("features");
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let fixed = kmeans_fixed(&features, &FixedKMeans::default()).expect("fixed");
        let k = t.elapsed().as_secs_f64();
        eprintln!(
            "{} customers: features {f:.3} s + kmeans_fixed {k:.3} s = {:.3} s; sizes {:?}",
            fixed.customers,
            f + k,
            fixed.sizes
        );
    }
    let t = Instant::now();
    let features = SegmentFeatures::compute(&sales, None, None).expect("features");
    let seg = analytics_lib::segments::fit_segments(&features, &SegmentParams::default())
        .expect("segments");
    eprintln!(
        "full search k 2..=8, 10 runs: k = {}, silhouette {:?}, {:.2} s; {:?}",
        seg.model.k(),
        seg.model.meta.silhouette,
        t.elapsed().as_secs_f64(),
        seg.model.names()
    );
}

// ---------------------------------------------------------------------------
// Defaults, the fast Lloyd loop, seeds and the notebook helpers.

#[test]
fn default_search_range_is_four_to_eight_and_still_finds_planted_blobs_in_it() {
    let p = KMeansParams::default();
    assert_eq!((p.k_min, p.k_max), (4, 8), "documented default range");
    assert_eq!(SegmentParams::default().kmeans, p);
    // Five planted blobs: the default search (4..=8) picks 5 and recovers them.
    let centres = vec![
        vec![0.0, 0.0, 0.0],
        vec![9.0, 0.0, 0.0],
        vec![0.0, 9.0, 0.0],
        vec![0.0, 0.0, 9.0],
        vec![9.0, 9.0, 9.0],
    ];
    let (x, truth) = blobs(&centres, 120, 0.8, 21);
    let search = KMeansParams::default().fit(&x).expect("kmeans");
    assert_eq!(search.best.k, 5, "{:?}", search.curve);
    let ks: Vec<usize> = search.curve.iter().map(|s| s.k).collect();
    assert_eq!(ks, vec![4, 5, 6, 7, 8]);
    let ari = adjusted_rand_index(&truth, &as_i64(&search.best.labels)).expect("ari");
    assert!(ari >= 0.95, "adjusted Rand index {ari}");
    // Two planted blobs are outside the range: the search cannot answer 2,
    // it answers its smallest k with a clearly worse silhouette.
    let (x2, _) = blobs(&centres[..2], 200, 0.8, 22);
    let s2 = KMeansParams::default().fit(&x2).expect("kmeans");
    assert!(s2.best.k >= 4);
    let wide = KMeansParams::default()
        .k_range(2, 8)
        .fit(&x2)
        .expect("kmeans");
    assert_eq!(wide.best.k, 2);
    assert!(wide.silhouette > s2.silhouette);
}

#[test]
fn the_fast_lloyd_loop_matches_linfa_from_the_same_start() {
    let centres = vec![
        vec![0.0, 0.0, 0.0, 1.0],
        vec![3.0, 0.5, 0.0, 0.0],
        vec![0.0, 3.0, 1.0, 0.0],
    ];
    // Overlapping blobs (sd 1.2) so the iterations have work to do, and
    // more rows than one parallel block.
    let (x, _) = blobs(&centres, 3_000, 1.2, 8);
    for (k, seed) in [(3usize, 1u64), (5, 2), (8, 3)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pick: Vec<usize> = (0..k)
            .map(|_| rand::Rng::random_range(&mut rng, 0..x.nrows()))
            .collect();
        let init = x.select(ndarray::Axis(0), &pick);
        for max_it in [1u64, 5, 300] {
            let ours = lloyd(&x, &init, max_it, 1e-4).expect("lloyd");
            let theirs = lloyd_linfa(&x, &init, max_it, 1e-4).expect("linfa");
            assert!(ours.iterations >= 1 && ours.iterations <= max_it);
            let diff = (&ours.centroids - &theirs.centroids)
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                diff < 1e-9,
                "k = {k}, ≤ {max_it} iterations: centroids differ by {diff}"
            );
        }
    }
    // Bad input is an error naming what was expected.
    let e = lloyd(&x, &Array2::zeros((2, 3)), 10, 1e-4).expect_err("width");
    assert_mentions(
        &e.to_string(),
        &["initial centroids", "of 4 values", "2 × 3"],
    );
    let e = lloyd(&x, &x.select(ndarray::Axis(0), &[0, 1]), 0, 1e-4).expect_err("0 it");
    assert_mentions(&e.to_string(), &["max_iterations", "at least 1"]);
}

#[test]
fn tsne_is_deterministic_for_a_seed_and_the_seed_matters() {
    let (features, _) = planted_customers(50, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let labels = as_i64(&seg.labels);
    let run = |seed: u64| {
        views::tsne(
            &seg.scaled,
            &labels,
            &TsneParams {
                sample: 150,
                max_iterations: 250,
                seed,
                ..TsneParams::default()
            },
        )
        .expect("tsne")
    };
    let a = run(7);
    let b = run(7);
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.coords, b.coords, "same seed, same map, bit for bit");
    let c = run(8);
    assert_ne!(a.coords, c.coords, "another seed, another map");
    // All rows embedded: same customers, different starting layout.
    let all = |seed: u64| {
        views::tsne(
            &seg.scaled,
            &labels,
            &TsneParams {
                sample: 1_000,
                max_iterations: 250,
                seed,
                ..TsneParams::default()
            },
        )
        .expect("tsne")
    };
    let (d, e) = (all(1), all(2));
    assert_eq!(d.rows, e.rows);
    assert_ne!(d.coords, e.coords);
    // Neighbours stay neighbours whatever the seed: points of one planted
    // group are closer to each other than to other groups in both maps.
    for m in [&d, &e] {
        let dist = |i: usize, j: usize| {
            ((m.coords[[i, 0]] - m.coords[[j, 0]]).powi(2)
                + (m.coords[[i, 1]] - m.coords[[j, 1]]).powi(2))
            .sqrt()
        };
        let (mut within, mut across, mut nw, mut na) = (0.0, 0.0, 0.0, 0.0);
        for i in 0..m.rows.len() {
            for j in (i + 1)..m.rows.len() {
                if labels[m.rows[i]] == labels[m.rows[j]] {
                    within += dist(i, j);
                    nw += 1.0;
                } else {
                    across += dist(i, j);
                    na += 1.0;
                }
            }
        }
        assert!(within / nw < 0.5 * across / na);
    }
}

#[test]
fn profile_table_and_marketing_actions_for_people() {
    let (features, _) = planted_customers(40, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let df = profiles_frame(&seg.model.profiles, features.as_of).expect("table");
    assert_eq!(df.height(), seg.model.k());
    let cols: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(cols[0], "segment");
    assert!(cols.contains(&"typical last order".to_string()));
    let html = analytics_lib::notebook::table_html(
        &df,
        &[("median spend", analytics_lib::notebook::Format::Money)],
        10,
    );
    // Dates dd/mm/yyyy, money R$ with Brazilian separators, shares in the categories.
    assert!(
        regex_like_date(&html),
        "a dd/mm/yyyy date in the table: {html}"
    );
    assert_mentions(&html, &["R$ ", "Champions", "eletronicos"]);
    // The champions' typical last order is a few days before as_of.
    let champions = seg
        .model
        .profiles
        .iter()
        .find(|p| p.name == "Champions")
        .expect("champions");
    let expected =
        features.as_of - chrono::Duration::days(champions.recency_days.median.round() as i64);
    assert_mentions(&html, &[&analytics_lib::locale::date(expected)]);

    for name in [
        "Champions",
        "Loyal",
        "Loyal (2)",
        "Loyal · high ticket",
        "Promising/New",
        "At risk",
        "Big spenders",
        "Hibernating (3)",
        "Lost",
        "noise",
    ] {
        let a = marketing_action(name);
        assert!(a.len() > 20 && !a.starts_with("No rule"), "{name}: {a}");
    }
    assert_ne!(marketing_action("Champions"), marketing_action("Lost"));
    assert_eq!(marketing_action("Loyal (2)"), marketing_action("Loyal"));
    assert_eq!(
        marketing_action("Champions · high ticket · top category moda"),
        marketing_action("Champions")
    );
    assert!(marketing_action("Someone else").starts_with("No rule"));
}

fn regex_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(10).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            2 | 5 => *c == b'/',
            _ => c.is_ascii_digit(),
        })
    })
}

#[test]
fn a_subset_of_customers_keeps_their_rows_and_ids() {
    let (features, _) = planted_customers(10, 0);
    let sub = features.subset(&[3, 0, 39]).expect("subset");
    assert_eq!(sub.n_customers(), 3);
    assert_eq!(sub.customer_ids, ["c00003", "c00000", "c00039"]);
    assert_eq!(
        sub.column("monetary").expect("m"),
        [3, 0, 39]
            .iter()
            .map(|&i| features.column("monetary").expect("m")[i])
            .collect::<Vec<_>>()
    );
    let e = features.subset(&[40]).expect_err("out of range");
    assert_mentions(&e.to_string(), &["indices below 40", "found 40"]);
}

#[test]
fn k_choice_and_k_distance_charts_carry_their_data() {
    let (features, _) = planted_customers(40, 3);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let html = views::k_choice_chart(&seg.search.curve, seg.model.k())
        .expect("k chart")
        .to_inline_html(Some("kchoice"));
    let chosen = format!("chosen k = {}", seg.model.k());
    assert_mentions(&html, &["inertia (elbow)", "silhouette", &chosen, "\"x2\""]);
    // One point per k tried on each panel.
    assert_eq!(html.matches("\"x\":[2.0,3.0,4.0,5.0,6.0]").count(), 2);
    assert!(views::k_choice_chart(&[], 4).is_err());
    let db = DbscanParams::new().fit(&seg.scaled).expect("dbscan");
    let s = db.suggestion.as_ref().expect("suggested eps");
    let html = views::k_distance_chart(s)
        .expect("k-distance")
        .to_inline_html(Some("kdist"));
    assert_mentions(&html, &["knee: eps = ", "k-distance curve"]);
}

#[test]
fn pca_on_many_rows_is_finite_and_fitted_on_a_sample() {
    // More rows than PCA_FIT_ROWS: the components come from a sample,
    // every row is projected, and the variance shares stay consistent.
    let centres = vec![vec![0.0; 6], vec![3.0, 1.0, 0.0, 0.0, 0.5, 0.0]];
    let (x, _) = blobs(&centres, 15_000, 1.0, 4);
    let p = views::pca(&x, 3).expect("pca");
    assert_eq!(p.coords.dim(), (30_000, 3));
    assert!(p.coords.iter().all(|v| v.is_finite()));
    let r = &p.explained_variance_ratio;
    assert!(
        r[0] > r[1] && r[1] >= r[2] * 0.9 && r.iter().sum::<f64>() <= 1.0 + 1e-9,
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------
// Issue #17: names that are distinct and true, migration, stability.

/// Linear-interpolation quantile of ascending values (numpy's default).
fn quantile_of(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let i = h.floor() as usize;
    if i + 1 < sorted.len() {
        sorted[i] + (h - i as f64) * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Every name is distinct, has no number suffix, and each of its words is
/// true of its group, checked from the raw features (not from the library's
/// stats): e.g. a "high value" group's median spend is above 60% of all
/// customers' and above the overall median.
fn assert_names_are_true(features: &SegmentFeatures, labels: &[Option<usize>], names: &[String]) {
    let mut unique = names.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "distinct names: {names:?}");
    for n in names {
        assert!(
            !n.contains(" (") && !n.ends_with(')'),
            "no numbered names: {n}"
        );
    }
    let col = |n: &str| features.column(n).expect("column");
    let cols = [
        col("recency_days"),
        col("frequency"),
        col("monetary"),
        col("average_ticket"),
    ];
    let all: Vec<Vec<f64>> = cols.iter().map(|c| sorted(c.clone())).collect();
    for (c, name) in names.iter().enumerate() {
        let members: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] == Some(c))
            .collect();
        if members.is_empty() {
            continue;
        }
        let med = |j: usize| {
            let v = sorted(members.iter().map(|&i| cols[j][i]).collect());
            quantile_of(&v, 0.5)
        };
        let (r, f, m, t) = (med(0), med(1), med(2), med(3));
        let high = |j: usize, v: f64| v > quantile_of(&all[j], 0.6);
        let low = |j: usize, v: f64| v < quantile_of(&all[j], 0.4);
        let recent = low(0, r);
        let lapsed = high(0, r);
        let (f_high, f_low) = (high(1, f), low(1, f));
        let (m_high, m_low) = (high(2, m), low(2, m));
        let (t_high, t_low) = (high(3, t), low(3, t));
        let overall_m = quantile_of(&all[2], 0.5);
        let words: Vec<&str> = name.split(" · ").collect();
        let ok = match words[0] {
            "Champions" => recent && f_high && m_high && m > overall_m,
            "Loyal" => f_high && !lapsed,
            "Promising/New" => recent && !(f_high && m_high),
            "At risk" => lapsed && (f_high || m_high),
            "Lost" => lapsed && m_low && m < overall_m,
            "Big spenders" => m_high && !recent && !lapsed && !f_high,
            "Hibernating" => !recent && !f_high && !m_high,
            other => panic!("unknown base name {other}"),
        };
        assert!(
            ok,
            "{name}: recency {r}, frequency {f}, monetary {m} (overall median {overall_m})"
        );
        for w in &words[1..] {
            let ok = match *w {
                "high value" => m_high && m > overall_m,
                "mid value" => !m_high && !m_low,
                "low value" => m_low && m < overall_m,
                "recent" => recent,
                "mid recency" => !recent && !lapsed,
                "lapsed" => lapsed,
                "frequent" => f_high,
                "mid frequency" => !f_high && !f_low,
                "infrequent" => f_low,
                "high ticket" => t_high,
                "mid ticket" => !t_high && !t_low,
                "low ticket" => t_low,
                w if w.starts_with("top category ") => {
                    let cat = &w["top category ".len()..];
                    let revenue = |cat: &str| -> f64 {
                        let s = col(&format!("share_{cat}"));
                        members.iter().map(|&i| s[i] * cols[2][i]).sum()
                    };
                    let mine = revenue(cat);
                    features.categories.iter().all(|c| revenue(c) <= mine)
                }
                w if w.starts_with("top ") && w.ends_with("% spend") => {
                    let pct: f64 = w[4..w.len() - 7].parse().expect("percent");
                    let at_least = cols[2].iter().filter(|&&v| v >= m).count();
                    at_least as f64 / cols[2].len() as f64 <= pct / 100.0 + 1e-12
                }
                w if w.ends_with(" customers") => {
                    w.split(' ').next().expect("n").replace('.', "") == members.len().to_string()
                }
                _ => true, // median recency / orders: numbers read off the same medians
            };
            assert!(
                ok,
                "{name}: `{w}` is not true (recency {r}, frequency {f}, monetary {m}, ticket {t})"
            );
        }
    }
}

/// Customers built so that two KMeans clusters are alike in RFM: two
/// champion groups that differ only in what they buy (eletronicos or moda),
/// plus new, at-risk and lost customers.
fn alike_customers(per: usize) -> (SegmentFeatures, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let jitter = Normal::new(0.0, 1.0).expect("normal");
    let mut z = || jitter.sample(&mut rng);
    let groups: [(f64, f64, f64, f64); 5] = [
        (5.0, 20.0, 9_000.0, 1.0),   // champions, eletronicos
        (5.0, 20.0, 9_000.0, 0.0),   // champions, moda
        (10.0, 1.0, 150.0, 0.5),     // new
        (450.0, 12.0, 3_000.0, 0.7), // at risk
        (700.0, 1.0, 60.0, 0.2),     // lost
    ];
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for (g, (r, f, m, s)) in groups.iter().enumerate() {
        for _ in 0..per {
            let rec = (r * (1.0 + 0.1 * z())).max(0.0).round();
            let freq: f64 = (f * (1.0 + 0.1 * z())).round().max(1.0);
            let mon = m * (1.0 + 0.1 * z());
            let share = (s + 0.05 * z()).clamp(0.0, 1.0);
            rows.push(vec![rec, freq, mon, mon / freq, share, 1.0 - share]);
            truth.push(g as i64);
        }
    }
    let categories: Vec<String> = CATS.iter().map(|c| c.to_string()).collect();
    let names = analytics_lib::segments::segment_feature_names(&categories);
    let ids = (0..rows.len()).map(|i| format!("c{i:05}")).collect();
    let matrix = FeatureMatrix::from_rows(names, &rows).expect("matrix");
    let as_of = NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    (
        SegmentFeatures::from_parts(as_of, categories, ids, matrix).expect("features"),
        truth,
    )
}

/// Issue #17: on a real retailer's data two clusters were both
/// "Champions" and two both "Hibernating" ("Champions (2)"). Alike clusters
/// now get distinct names from what differs, and every word is true.
#[test]
fn alike_clusters_get_distinct_names_that_are_true_of_their_groups() {
    let (features, truth) = alike_customers(150);
    let params = SegmentParams {
        kmeans: KMeansParams::new().k(5).n_runs(4).seed(5),
        ..SegmentParams::default()
    };
    let seg = fit_segments(&features, &params).expect("fit");
    let ari = adjusted_rand_index(&truth, &as_i64(&seg.labels)).expect("ari");
    assert!(ari >= 0.95, "the five planted groups are found: ARI {ari}");
    let names = seg.model.names();
    let labels: Vec<Option<usize>> = seg.labels.iter().map(|&l| Some(l)).collect();
    assert_names_are_true(&features, &labels, &names);
    let name_of_group = |g: i64| {
        let i = truth.iter().position(|&t| t == g).expect("member");
        names[seg.labels[i]].clone()
    };
    // The two champion groups: the same base name, told apart by category.
    assert_eq!(name_of_group(0), "Champions · top category eletronicos");
    assert_eq!(name_of_group(1), "Champions · top category moda");
    // The library's own stats say the same.
    let naming = name_groups(&features, &labels, seg.model.k()).expect("naming");
    assert_eq!(naming.names, names);
    for (s, p) in naming.stats.iter().zip(&seg.model.profiles) {
        assert_eq!(s.size, p.size);
        assert!((s.median_monetary - p.monetary.median).abs() < 1e-9);
    }

    // Without the category mix the twins are one cluster too many: whatever
    // KMeans does with them, the names stay distinct and true.
    let params = SegmentParams {
        kmeans: KMeansParams::new().k(6).n_runs(2).seed(3),
        category_mix: false,
        ..SegmentParams::default()
    };
    let seg = fit_segments(&features, &params).expect("fit");
    let labels: Vec<Option<usize>> = seg.labels.iter().map(|&l| Some(l)).collect();
    assert_names_are_true(&features, &labels, &seg.model.names());
}

#[test]
fn planted_and_dbscan_names_are_true_of_their_groups() {
    let (features, _) = planted_customers(120, 3);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let labels: Vec<Option<usize>> = seg.labels.iter().map(|&l| Some(l)).collect();
    assert_names_are_true(&features, &labels, &seg.model.names());
    let fit = DbscanParams::new().fit(&seg.scaled).expect("dbscan");
    let profiles = dbscan_profiles(&features, &seg.model.scaler, &seg.scaled, &fit).expect("p");
    let names: Vec<String> = profiles
        .iter()
        .filter(|p| p.segment_id >= 0)
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names.len(), fit.n_clusters);
    assert_names_are_true(&features, &fit.labels, &names);
}

/// `rows[i]` with the recency of `who` set to `days`.
fn with_recency(
    features: &SegmentFeatures,
    who: &[usize],
    days: f64,
    as_of: NaiveDate,
) -> SegmentFeatures {
    let names = features.names().to_vec();
    let rows: Vec<Vec<f64>> = (0..features.n_customers())
        .map(|i| {
            let mut r = features.matrix.row(i).to_vec();
            if who.contains(&i) {
                r[0] = days;
            }
            r
        })
        .collect();
    SegmentFeatures::from_parts(
        as_of,
        features.categories.clone(),
        features.customer_ids.clone(),
        FeatureMatrix::from_rows(names, &rows).expect("matrix"),
    )
    .expect("features")
}

#[test]
fn migration_matrix_counts_who_moved_and_rows_add_up_to_the_earlier_sizes() {
    let (before, truth) = planted_customers(80, 0);
    let seg = fit_segments(&before, &planted_params()).expect("fit");
    let model = &seg.model;
    // 90 days later: 25 champions have not come back (they look like the
    // at-risk group now), and 7 new customers arrived.
    let champions: Vec<usize> = (0..truth.len())
        .filter(|&i| truth[i] == 0)
        .take(25)
        .collect();
    let later = before.as_of + chrono::Duration::days(90);
    let moved = with_recency(&before, &champions, 460.0, later);
    let newcomers = planted_customers(80, 0)
        .0
        .subset(&[170, 171, 172, 173, 174, 175, 176])
        .expect("subset");
    let mut ids = moved.customer_ids.clone();
    let mut rows: Vec<Vec<f64>> = (0..moved.n_customers())
        .map(|i| moved.matrix.row(i).to_vec())
        .collect();
    for (k, i) in (0..newcomers.n_customers()).enumerate() {
        ids.push(format!("new{k}"));
        rows.push(newcomers.matrix.row(i).to_vec());
    }
    let after = SegmentFeatures::from_parts(
        later,
        before.categories.clone(),
        ids,
        FeatureMatrix::from_rows(before.names().to_vec(), &rows).expect("matrix"),
    )
    .expect("after");

    let m = MigrationMatrix::between(model, &before, &after).expect("matrix");
    let k = model.k();
    assert_eq!(m.segments, model.names());
    assert_eq!((m.from, m.to), (before.as_of, later));
    assert_eq!(m.counts.len(), k);
    // Rows add up to the earlier segment sizes, and those are the model's.
    let earlier: Vec<u64> = {
        let mut s = vec![0u64; k];
        for (id, _) in model.assign_features(&before).expect("assign") {
            s[id] += 1;
        }
        s
    };
    assert_eq!(m.from_sizes, earlier);
    for i in 0..k {
        assert_eq!(
            m.counts[i].iter().sum::<u64>() + m.gone[i],
            m.from_sizes[i],
            "row {i}"
        );
        if m.from_sizes[i] > 0 {
            let s: f64 = m.row_shares[i].iter().sum();
            assert!((s - 1.0).abs() < 1e-12, "row {i} shares {s}");
        }
    }
    assert_eq!(m.gone.iter().sum::<u64>(), 0);
    assert_eq!(m.new_customers.iter().sum::<u64>(), 7);
    assert_eq!(m.to_sizes.iter().sum::<u64>(), after.n_customers() as u64);
    // Who moved from Champions to At risk: exactly the 25.
    assert_eq!(m.moved("Champions", "At risk").expect("names"), 25);
    assert_eq!(m.moved("Champions", "Champions").expect("names"), 55);
    let stayed = (before.n_customers() - 25) as f64 / before.n_customers() as f64;
    assert!((m.stayed_share() - stayed).abs() < 1e-12);
    let e = m.moved("Champions", "Nobody").expect_err("unknown name");
    assert_mentions(&e.to_string(), &["Nobody", "Champions"]);
    // For people: a table and a text block.
    let df = m.frame().expect("frame");
    assert_eq!(df.height(), k + 1);
    assert_eq!(df.width(), k + 2);
    let text = m.to_text();
    assert_mentions(&text, &["Champions", "At risk", "new customers", "stayed"]);
    // Dates the wrong way round are refused.
    let e = MigrationMatrix::between(model, &after, &before).expect_err("order");
    assert_mentions(&e.to_string(), &["earlier snapshot first"]);
}

#[test]
fn migration_matrix_on_generated_sales_between_as_of_minus_90_days_and_as_of() {
    let dir = TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines: 30_000,
        seed: 5,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let frames = load(dir.path()).expect("load").collect().expect("collect");
    let sales = Sales::from_frames(&clean(&frames).expect("clean").frames).expect("sales");
    let params = SegmentParams {
        kmeans: KMeansParams::new().n_runs(2).seed(1),
        ..SegmentParams::default()
    };
    let (features, seg) = segment_customers(&sales, None, &params).expect("segments");
    let labels: Vec<Option<usize>> = seg.labels.iter().map(|&l| Some(l)).collect();
    assert_names_are_true(&features, &labels, &seg.model.names());
    let as_of = features.as_of;
    let m = MigrationMatrix::compute(&seg.model, &sales, as_of, 90).expect("matrix");
    let before = SegmentFeatures::compute(
        &sales,
        Some(as_of - chrono::Duration::days(90)),
        Some(&seg.model.meta.categories),
    )
    .expect("before");
    assert_eq!(
        m.from_sizes.iter().sum::<u64>(),
        before.n_customers() as u64
    );
    for i in 0..seg.model.k() {
        assert_eq!(m.counts[i].iter().sum::<u64>(), m.from_sizes[i], "row {i}");
    }
    assert_eq!(m.gone.iter().sum::<u64>(), 0, "nobody disappears");
    assert_eq!(
        m.new_customers.iter().sum::<u64>(),
        (features.n_customers() - before.n_customers()) as u64
    );
    // The later snapshot is the model's own training customers.
    let mut sizes = vec![0u64; seg.model.k()];
    for &l in &seg.labels {
        sizes[l] += 1;
    }
    assert_eq!(m.to_sizes, sizes);
    eprintln!("{}", m.to_text());
}

#[test]
fn stability_is_the_adjusted_rand_index_of_two_models_on_the_same_customers() {
    // Hand-computed: contingency [[2, 1, 0], [0, 1, 2]] → Σ C(n_ij, 2) = 2,
    // rows 2 × C(3, 2) = 6, columns 3 × C(2, 2) = 3, C(6, 2) = 15:
    // expected 6 × 3 / 15 = 1,2; max (6 + 3) / 2 = 4,5; ARI = 0,8 / 3,3 = 8/33.
    let ari = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]).expect("ari");
    assert!((ari - 8.0 / 33.0).abs() < 1e-12, "{ari}");
    assert_eq!(adjusted_rand_index(&[3, 3, 1], &[3, 3, 1]), Some(1.0));

    let (features, _) = planted_customers(60, 0);
    let seg = fit_segments(&features, &planted_params()).expect("fit");
    let same = stability(&seg.model, &features, &seg.model, &features).expect("same");
    assert!((same.adjusted_rand_index - 1.0).abs() < 1e-12);
    assert_eq!(same.customers, features.n_customers());
    assert_eq!(same.same_name_share, 1.0);
    // A relabelled model (ids in reverse order): the same grouping.
    let mut relabelled = seg.model.clone();
    relabelled.centroids.reverse();
    relabelled.profiles.reverse();
    let ids: Vec<usize> = relabelled
        .assign_features(&features)
        .expect("assign")
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_ne!(ids, seg.labels, "the ids did change");
    let st = stability(&seg.model, &features, &relabelled, &features).expect("relabelled");
    assert!((st.adjusted_rand_index - 1.0).abs() < 1e-12);
    assert_eq!(st.same_name_share, 1.0, "names follow the groups");
    // Customers are matched by id: shuffled rows change nothing.
    let order: Vec<usize> = (0..features.n_customers()).rev().collect();
    let shuffled = features.subset(&order).expect("subset");
    let st = stability(&seg.model, &features, &seg.model, &shuffled).expect("shuffled");
    assert!((st.adjusted_rand_index - 1.0).abs() < 1e-12);
    // A model of another k on the same customers agrees less.
    let other = fit_segments(
        &features,
        &SegmentParams {
            kmeans: KMeansParams::new().k(2).seed(1),
            ..SegmentParams::default()
        },
    )
    .expect("k = 2");
    let st = stability(&seg.model, &features, &other.model, &features).expect("k 2");
    assert!(st.adjusted_rand_index < 0.9, "{st:?}");
}
