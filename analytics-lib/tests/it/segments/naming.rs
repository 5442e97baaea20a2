//! Issue #17: names that are distinct and true, migration, stability.

use super::*;

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
