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
    DbscanParams, FixedKMeans, KMeansParams, MigrationMatrix, NOISE_ID, RfmTiers, Scaler,
    SegmentError, SegmentFeatures, SegmentFile, SegmentModel, SegmentParams, SegmentStats, Tier,
    TierCuts, Transform, adjusted_rand_index, base_name, dbscan_grid, dbscan_linfa,
    dbscan_profiles, fit_segments, kmeans_fixed, lloyd, lloyd_linfa, marketing_action, name_groups,
    names_from_stats, profiles_frame, segment_customers, stability,
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

/// Assigning row by row in blocks gives, bit for bit, what selecting the
/// model's features, scaling the whole matrix (`Scaler::transform`) and
/// taking each row's nearest centroid gives, over several blocks and with
/// the matrix's columns in another order than the model's; the first bad
/// value in row order is the one reported, with its row.
#[test]
fn blockwise_assignment_equals_the_whole_matrix_path() {
    let (features, _) = planted_customers(3_200, 7);
    let seg = fit_segments(
        &features
            .subset(&(0..2_000).map(|i| i * 5).collect::<Vec<_>>())
            .expect("subset"),
        &planted_params(),
    )
    .expect("fit");
    let model = seg.model;
    // The columns reversed: the model reads its features by name.
    let names: Vec<String> = features.names().iter().rev().cloned().collect();
    let rows: Vec<Vec<f64>> = (0..features.n_customers())
        .map(|r| features.matrix.row(r).iter().rev().copied().collect())
        .collect();
    let reversed = SegmentFeatures {
        matrix: FeatureMatrix::from_rows(names, &rows).expect("matrix"),
        ..features.clone()
    };
    let whole = |f: &SegmentFeatures| -> Vec<(usize, u64)> {
        let refs: Vec<&str> = model.feature_names().iter().map(String::as_str).collect();
        let x = model
            .scaler
            .transform(&f.select(&refs).expect("select"))
            .expect("scale");
        x.rows()
            .into_iter()
            .map(|p| {
                let mut best = (0, f64::INFINITY);
                for (c, centroid) in model.centroids.iter().enumerate() {
                    let d: f64 = centroid
                        .iter()
                        .zip(p.iter())
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    if d < best.1 {
                        best = (c, d);
                    }
                }
                (best.0, best.1.sqrt().to_bits())
            })
            .collect()
    };
    let expected = whole(&features);
    assert!(expected.len() > 3 * 4096, "several blocks");
    for f in [&features, &reversed] {
        let got: Vec<(usize, u64)> = model
            .assign_features(f)
            .expect("assign")
            .into_iter()
            .map(|(c, d)| (c, d.to_bits()))
            .collect();
        assert_eq!(got, expected);
    }
    // Two bad values, in different blocks: the first row's is reported.
    let monetary = features
        .names()
        .iter()
        .position(|n| n == "monetary")
        .expect("monetary");
    let mut rows: Vec<Vec<f64>> = (0..features.n_customers())
        .map(|r| features.matrix.row(r).to_vec())
        .collect();
    rows[9_000][monetary] = f64::NAN;
    rows[5_000][monetary] = -7.0;
    let bad = SegmentFeatures {
        matrix: FeatureMatrix::from_rows(features.names().to_vec(), &rows).expect("matrix"),
        ..features.clone()
    };
    let e = model
        .assign_features(&bad)
        .expect_err("bad value")
        .to_string();
    assert_mentions(&e, &["monetary", "row 5000"]);
    let refs: Vec<&str> = model.feature_names().iter().map(String::as_str).collect();
    let e2 = model
        .scaler
        .transform(&bad.select(&refs).expect("select"))
        .expect_err("bad value")
        .to_string();
    assert_eq!(e, e2);
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

mod dbscan;
mod defaults;
mod naming;

#[test]
fn fit_transform_is_fit_then_transform_to_the_bit_and_names_a_bad_row() {
    let names: Vec<String> = ["recency_days", "frequency", "monetary"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let transforms: Vec<Transform> = names.iter().map(|n| Transform::for_feature(n)).collect();
    let weights = [1.0, 0.5, 2.0];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let normal: Normal<f64> = Normal::new(0.0, 40.0).expect("normal");
    // More rows than one parallel block (4096).
    let x = Array2::from_shape_fn((10_000, 3), |(r, j)| match j {
        0 => r as f64 % 365.0,
        _ => normal.sample(&mut rng).abs() + (r % 7) as f64,
    });
    let fitted = Scaler::fit(&names, &transforms, &weights, &x).expect("fit");
    let expected = fitted.transform(&x).expect("transform");
    let (scaler, scaled) =
        Scaler::fit_transform(&names, &transforms, &weights, &x).expect("fit_transform");
    assert_eq!(scaler, fitted);
    // The fitted means and deviations, one value at a time in row order
    // (`fit` and `fit_transform` share their fitting code, so this is the
    // reference both are held to).
    for (j, t) in transforms.iter().enumerate() {
        let col: Vec<f64> = x
            .column(j)
            .iter()
            .map(|&v| match t {
                Transform::Log1p => v.ln_1p(),
                Transform::Identity => v,
            })
            .collect();
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert_eq!(scaler.means[j].to_bits(), mean.to_bits(), "mean of {j}");
        assert_eq!(scaler.stds[j].to_bits(), sd.to_bits(), "std of {j}");
    }
    assert_eq!(scaled.dim(), expected.dim());
    for (a, b) in scaled.iter().zip(expected.iter()) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
    // A value log1p cannot take: the same error as `transform`, with its row.
    let mut bad = x.clone();
    bad[[6_001, 2]] = -3.0;
    let e = Scaler::fit_transform(&names, &transforms, &weights, &bad).expect_err("refused");
    assert_mentions(&e.to_string(), &["monetary", "-3", "row 6001"]);
}
