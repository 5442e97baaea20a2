//! CLV by segment and segment migration (issues 17 and 18, item 6).

use super::*;

/// Closeness for values serve keeps as `f32` per customer.
#[track_caller]
fn close_f32(found: f64, expected: f64, what: &str) {
    close_within(found, expected, 1e-5, what);
}

#[tokio::test]
async fn clv_and_migration_cards_equal_the_library_functions() {
    use analytics_lib::clv::{ClvModel, CustomerSummary, clv_by_segment};
    use analytics_lib::segments::migration::{MIGRATION_DAYS, MigrationMatrix};
    let app = spawn_app().await;
    let (want, migration) = on_thread(|| {
        let s = sales();
        let f = fixture();
        let model = SegmentModel::load(&f.trained.join("segments_k4.msgpack")).expect("segments");
        let features =
            SegmentFeatures::compute(s, Some(s.default_as_of), Some(&model.meta.categories))
                .expect("features");
        let assigned = model.assign_features(&features).expect("assign");
        let segment: HashMap<String, usize> = features
            .customer_ids
            .iter()
            .cloned()
            .zip(assigned.iter().map(|(k, _)| *k))
            .collect();
        let clv = ClvModel::load(&f.trained.join(analytics_lib::registry::CLV_FILE)).expect("clv");
        let summary = CustomerSummary::compute(s, s.default_as_of).expect("summary");
        let predicted = clv.predict(&summary).expect("predict");
        let want = clv_by_segment(&summary, &predicted, &model.names(), |id| {
            segment.get(id).copied()
        })
        .expect("by segment");
        let migration = MigrationMatrix::compute(&model, s, s.default_as_of, MIGRATION_DAYS)
            .expect("migration");
        (want, migration)
    });

    // CLV by segment: the lookups' values (f32 per customer) summed per segment.
    let (st, card) = get_json(&app, "/api/dashboard/clv").await;
    assert_eq!(st, 200, "{card}");
    assert_eq!(card["available"], json!(true), "{card}");
    assert!(
        card["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with('v')),
        "{card}"
    );
    assert_eq!(card["horizon_days"].as_u64(), Some(365), "{card}");
    let rows = card["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), want.len(), "{card}");
    assert!(
        want.len() >= 4,
        "four segments (and maybe customers without one)"
    );
    for (r, w) in rows.iter().zip(&want) {
        let what = format!("segment {}", w.name);
        assert_eq!(r["segment"], json!(w.name), "{what}");
        assert_eq!(r["segment_id"], json!(w.segment), "{what}");
        assert_eq!(r["customers"].as_u64(), Some(w.customers as u64), "{what}");
        close_f32(r["total_clv"].as_f64().expect("total"), w.total_clv, &what);
        close_f32(
            r["share_of_clv"].as_f64().expect("share"),
            w.share_of_clv,
            &what,
        );
        close_f32(
            r["mean_p_alive"].as_f64().expect("p_alive"),
            w.mean_p_alive.expect("customers"),
            &what,
        );
        close_f32(
            r["mean_expected_purchases"].as_f64().expect("purchases"),
            w.mean_expected_purchases.expect("customers"),
            &what,
        );
    }
    let shares: f64 = rows.iter().filter_map(|r| r["share_of_clv"].as_f64()).sum();
    close_f32(shares, 1.0, "shares add up to 1");

    // Migration: the library's matrix over the last 90 days, count for count.
    let o = options(&app).await;
    let m = &o["segments"]["migration"];
    assert_eq!(m["from"], json!(migration.from.to_string()), "{m}");
    assert_eq!(m["to"], json!(migration.to.to_string()), "{m}");
    assert_eq!(m["days"], json!(MIGRATION_DAYS));
    assert_eq!(m["segments"], json!(migration.segments));
    assert_eq!(m["counts"], json!(migration.counts));
    assert_eq!(m["from_sizes"], json!(migration.from_sizes));
    assert_eq!(m["to_sizes"], json!(migration.to_sizes));
    assert_eq!(m["new_customers"], json!(migration.new_customers));
    close(
        m["stayed_share"].as_f64().expect("stayed"),
        migration.stayed_share(),
        "stayed share",
    );
    // Every customer now is in a segment at `to`: sizes add up to the live segments'.
    let now: u64 = o["segments"]["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter_map(|s| s["customers"].as_u64())
        .sum();
    assert_eq!(migration.to_sizes.iter().sum::<u64>(), now);
    assert!(
        migration.counts.iter().flatten().sum::<u64>() > 0,
        "someone was a customer 90 days before"
    );
}
