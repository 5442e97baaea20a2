//! `lookup::CustomerRows`: the compact rows serve answers from give, for
//! every customer and every feature list, exactly what `customer_features`
//! (and `SegmentFeatures`) compute for that list on the full sales lines.

use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::features::{customer_features, feature_names};
use analytics_lib::kpi::Sales;
use analytics_lib::lookup::CustomerRows;
use analytics_lib::segments::{SegmentFeatures, segment_feature_names};
use analytics_lib::source::Source;

use crate::helpers::assert_mentions;

fn generated() -> (tempfile::TempDir, Sales) {
    let dir = tempfile::TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines: 30_000,
        seed: 11,
        defect_rate: 0.01,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let sales = Source::parquet(dir.path())
        .prepare()
        .expect("prepare")
        .sales;
    (dir, sales)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn projections_equal_customer_features_for_any_category_list() {
    let (_dir, sales) = generated();
    let as_of = sales.default_as_of;
    let rows = CustomerRows::compute(&sales, as_of).expect("rows");
    let all = rows.categories().to_vec();
    assert!(all.len() >= 5, "{all:?}");
    // The data's list; a subset in another order of choice (still sorted);
    // a list with a category the data does not have; no category at all.
    let mut with_unknown = vec![all[1].clone(), "zz_not_in_the_data".to_string()];
    with_unknown.sort();
    let lists = [
        all.clone(),
        vec![all[0].clone(), all[2].clone(), all[all.len() - 1].clone()],
        with_unknown,
        vec![],
    ];
    for list in &lists {
        let f = customer_features(&sales, as_of, Some(list)).expect("features");
        let m = f.matrix().expect("matrix");
        let ids = f.customer_ids().expect("ids");
        let p = rows.projection(&feature_names(list)).expect("projection");
        assert_eq!(p.names(), m.names());
        assert_eq!(rows.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            let got = rows.row(id, &p).expect("a row for every customer");
            assert_eq!(bits(&got), bits(m.row(i)), "customer {id}, list {list:?}");
        }
        // The means add the same values in the same order as over the matrix.
        let mut means = vec![0.0; m.n_cols()];
        for i in 0..m.n_rows() {
            means.iter_mut().zip(m.row(i)).for_each(|(s, v)| *s += v);
        }
        means.iter_mut().for_each(|s| *s /= m.n_rows() as f64);
        assert_eq!(bits(&rows.means(&p)), bits(&means), "list {list:?}");
    }
    assert!(
        rows.row("no-such-customer", &rows.projection(&[]).expect("p"))
            .is_none()
    );
}

#[test]
fn segment_projections_equal_segment_features() {
    let (_dir, sales) = generated();
    let as_of = sales.default_as_of;
    let rows = CustomerRows::compute(&sales, as_of).expect("rows");
    let list: Vec<String> = rows.categories().iter().step_by(2).cloned().collect();
    let f = SegmentFeatures::compute(&sales, Some(as_of), Some(&list)).expect("segment features");
    let names = segment_feature_names(&list);
    let p = rows.projection(&names).expect("projection");
    for (i, id) in f.customer_ids.iter().enumerate() {
        let got = rows.row(id, &p).expect("row");
        assert_eq!(bits(&got), bits(f.matrix.row(i)), "customer {id}");
    }
}

#[test]
fn a_feature_outside_the_definitions_is_refused_by_name() {
    let (_dir, sales) = generated();
    let rows = CustomerRows::compute(&sales, sales.default_as_of).expect("rows");
    let e = rows
        .projection(&["recency_days".to_string(), "lifetime_value".to_string()])
        .expect_err("not a feature");
    assert_mentions(
        &e.to_string(),
        &["lifetime_value", "recency_days", "share_<category>"],
    );
}

#[test]
fn the_rows_are_far_smaller_than_the_lines() {
    let (_dir, sales) = generated();
    let rows = CustomerRows::compute(&sales, sales.default_as_of).expect("rows");
    // The whole view: its lines (ids as codes), customers and order ids.
    let lines_bytes = sales.estimated_size();
    assert!(
        rows.heap_bytes() * 3 < lines_bytes,
        "rows {} bytes, lines {} bytes",
        rows.heap_bytes(),
        lines_bytes
    );
}
