//! DBSCAN.

use super::*;

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
        // The grid on any number of dimensions (cube sizes, box pruning).
        let flat = x.as_slice().expect("standard layout");
        for dims in [1, 2, 3, 5] {
            let on =
                analytics_lib::segments::grid::dbscan_on(flat, x.nrows(), 5, eps, min_points, dims);
            assert_eq!(
                oracle, on,
                "eps {eps}, min_points {min_points}, {dims} dims"
            );
        }
    }
}

/// The k-distance curve (searched outward along the widest column) is the
/// brute-force one, value for value: blobs of several spreads, repeated
/// points (ties, zero distances) and a constant column.
#[test]
fn the_k_distance_curve_equals_brute_force() {
    let centres = vec![
        vec![0.0, 0.0, 0.0, 1.0],
        vec![5.0, 1.0, -2.0, 1.0],
        vec![-3.0, 4.0, 2.0, 1.0],
    ];
    let (mut x, _) = blobs(&centres, 400, 0.8, 11);
    x.column_mut(3).fill(1.0);
    for i in 0..40 {
        let row = x.row(i * 7).to_owned();
        x.row_mut(i * 7 + 1).assign(&row);
    }
    let (n, d) = x.dim();
    for min_points in [2, 5, 12] {
        let k = min_points - 1;
        let brute: Vec<f64> = {
            let mut v: Vec<f64> = (0..n)
                .map(|i| {
                    let mut dists: Vec<f64> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| {
                            (0..d)
                                .map(|c| {
                                    let t = x[[i, c]] - x[[j, c]];
                                    t * t
                                })
                                .sum()
                        })
                        .collect();
                    dists.sort_by(f64::total_cmp);
                    dists[k - 1].sqrt()
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let s = analytics_lib::segments::suggest_eps(&x, min_points, n, 3).expect("k-distances");
        assert_eq!(s.k_distances.len(), n);
        for (i, (got, want)) in s.k_distances.iter().zip(&brute).enumerate() {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "min_points {min_points}, rank {i}"
            );
        }
        // A sample: each of its values is one of the curve's.
        let part = analytics_lib::segments::suggest_eps(&x, min_points, 300, 3).expect("sampled");
        assert_eq!(part.k_distances.len(), 300);
        assert!(
            part.k_distances
                .iter()
                .all(|v| brute.binary_search_by(|b| b.total_cmp(v)).is_ok())
        );
    }
}
