//! Defaults, the fast Lloyd loop, seeds and the notebook helpers.

use super::*;

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
