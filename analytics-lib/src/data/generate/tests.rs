use super::*;

#[test]
fn calendar_marks_black_friday_2024() {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let cal = Calendar::new(start, NaiveDate::from_ymd_opt(2024, 12, 31).expect("date"));
    let bf = NaiveDate::from_ymd_opt(2024, 11, 29).expect("date");
    let i = (bf - start).num_days() as usize;
    assert_eq!(cal.event[i], Event::BlackFriday);
    assert_eq!(
        cal.factor[i], cal.max_factor,
        "Black Friday is the busiest day"
    );
}

#[test]
fn ids_are_unique() {
    let ids: std::collections::HashSet<String> = (0..100_000).map(|i| order_id(7, i)).collect();
    assert_eq!(ids.len(), 100_000);
    assert!(
        ids.iter().all(|id| id.len() == 12),
        "ids fit an inline string view"
    );
    assert_eq!(base62(u64::MAX), "LygHa16AHYF");
    assert_eq!(base62(0), "00000000000");
}

#[test]
fn bad_config_is_an_error() {
    let cfg = GeneratorConfig {
        defect_rate: 0.9,
        ..Default::default()
    };
    let err = cfg.check().expect_err("0.9 is out of range").to_string();
    assert!(err.contains("defect_rate") && err.contains("0.9"), "{err}");
}
