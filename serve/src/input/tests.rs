use super::*;
use serde_json::json;

fn names() -> Vec<String> {
    vec!["frequency".into(), "share_books".into()]
}

#[test]
fn features_in_model_order() {
    let r = parse_record(&json!({"share_books": 0.5, "frequency": 3}), &names(), "");
    assert_eq!(r, Ok(Record::Features(vec![3.0, 0.5])));
}

#[test]
fn customer_lookup() {
    let r = parse_record(&json!({"customer_id": "C1"}), &names(), "");
    assert_eq!(r, Ok(Record::Customer("C1".into())));
}

fn err(v: Value, prefix: &str) -> ErrorBody {
    match parse_record(&v, &names(), prefix) {
        Err(InputError(b)) => b,
        Ok(r) => panic!("accepted {v}: {r:?}"),
    }
}

#[test]
fn every_problem_names_its_field() {
    let b = err(json!({"frequency": 1}), "");
    assert_eq!(b.field.as_deref(), Some("share_books"));
    assert!(b.error.contains("missing"));
    let b = err(json!({"frequency": "3", "share_books": 0}), "records[2]");
    assert_eq!(b.field.as_deref(), Some("records[2].frequency"));
    assert_eq!(b.found.as_deref(), Some("the string \"3\""));
    let b = err(json!({"frequency": -1, "share_books": 0}), "");
    assert!(b.error.contains("invalid"));
    let b = err(json!({"frequency": 1, "share_books": 1.5}), "");
    assert_eq!(b.expected.as_deref(), Some("a share between 0 and 1"));
    let b = err(json!({"frequency": 1, "share_books": 0, "x": 1}), "");
    assert_eq!(b.field.as_deref(), Some("x"));
    let b = err(json!({"customer_id": 7}), "");
    assert_eq!(b.field.as_deref(), Some("customer_id"));
    let b = err(json!({"customer_id": "C1", "frequency": 1}), "");
    assert_eq!(b.field.as_deref(), Some("frequency"));
    let b = err(json!([1, 2]), "");
    assert_eq!(b.found.as_deref(), Some("an array of 2 items"));
}

#[test]
fn segment_records_need_rfm_only() {
    let names: Vec<String> = [
        "recency_days",
        "frequency",
        "monetary",
        "average_ticket",
        "share_books",
    ]
    .map(String::from)
    .to_vec();
    let r = parse_segment_record(
        &json!({"recency_days": 3, "frequency": 2, "monetary": 10.5}),
        &names,
        "",
    );
    let want: BTreeMap<String, f64> = [
        ("recency_days", 3.0),
        ("frequency", 2.0),
        ("monetary", 10.5),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    assert_eq!(r, Ok(SegmentRecord::Features(want)));
    let e = parse_segment_record(
        &json!({"recency_days": 3, "frequency": 2}),
        &names,
        "records[1]",
    )
    .expect_err("missing monetary");
    assert_eq!(e.0.field.as_deref(), Some("records[1].monetary"));
    let e = parse_segment_record(
        &json!({"recency_days": 3, "frequency": 2, "monetary": 1, "share_books": 2}),
        &names,
        "",
    )
    .expect_err("share above 1");
    assert_eq!(e.0.field.as_deref(), Some("share_books"));
    let e = parse_segment_record(
        &json!({"recency_days": 3, "frequency": 2, "monetary": 1, "tenure_days": 2}),
        &names,
        "",
    )
    .expect_err("not a segment feature");
    assert_eq!(e.0.field.as_deref(), Some("tenure_days"));
    assert_eq!(
        parse_segment_record(&json!({"customer_id": "C9"}), &names, ""),
        Ok(SegmentRecord::Customer("C9".into()))
    );
}

fn scan(v: Value, max: usize) -> Result<usize, BatchError> {
    scan_batch(v.to_string().as_bytes(), max)
}

#[test]
fn batch_shape() {
    assert_eq!(scan(json!({"records": [{}]}), 2), Ok(1));
    let field = |r: Result<usize, BatchError>| match r {
        Err(BatchError::Invalid(InputError(b))) => (400, b.field, b.found),
        Err(BatchError::TooLarge(InputError(b))) => (413, b.field, b.found),
        Ok(n) => panic!("accepted {n}"),
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        field(scan(json!({"records": []}), 2)),
        (400, some("records"), some("0 records"))
    );
    assert_eq!(
        field(scan(json!({"records": [1, 2, 3]}), 2)),
        (413, some("records"), some("3 records"))
    );
    assert_eq!(
        field(scan(json!({"records": [1], "extra": 1}), 2)).1,
        some("extra")
    );
    assert_eq!(
        field(scan(json!({"records": [], "extra": 1}), 2)).1,
        some("extra")
    );
    assert_eq!(field(scan(json!({"rows": [1]}), 2)).1, some("rows"));
    assert_eq!(
        field(scan(json!({}), 2)),
        (400, some("records"), some("nothing"))
    );
    assert_eq!(
        field(scan(json!({"records": {"a": 1}}), 2)),
        (400, some("records"), some("an object with 1 fields"))
    );
    assert_eq!(
        field(scan(json!({"records": "x"}), 2)).2,
        some("the string \"x\"")
    );
    assert_eq!(field(scan(json!([1, 2]), 2)).2, some("an array of 2 items"));
    assert_eq!(field(scan(json!(null), 2)).2, some("null"));
    let dup = br#"{"records": [1], "records": [2]}"#;
    assert_eq!(field(scan_batch(dup, 2)).2, some("`records` twice"));
    let bad = br#"{"records": [1, 2"#;
    let (status, _, found) = field(scan_batch(bad, 2));
    assert!(status == 400 && found.is_some_and(|f| f.contains("ends early")));
    assert_eq!(field(scan_batch(br#"{"records": [1]} x"#, 2)).0, 400);
    // Records are counted, not kept: a long string is never copied whole.
    let long = format!("{{\"records\": \"{}\"}}", "y".repeat(10_000));
    let found = field(scan_batch(long.as_bytes(), 2)).2.expect("found");
    assert!(found.len() < 80, "{found}");
}

#[test]
fn records_are_handed_over_one_at_a_time_in_order() {
    let body = br#"{"records": [{"a": 1}, 2, "three"]}"#;
    let mut seen = Vec::new();
    for_each_record::<()>(body, |i, v| {
        seen.push((i, v.clone()));
        Ok(())
    })
    .expect("read");
    assert_eq!(
        seen,
        vec![(0, json!({"a": 1})), (1, json!(2)), (2, json!("three"))]
    );
    let r = for_each_record(body, |i, _| if i == 1 { Err(i) } else { Ok(()) });
    assert!(matches!(r, Err(RecordsError::Record(1))));
}

/// The fast reader agrees with `parse_record` on every body: the same
/// row when both accept, `None` (the slow path decides) otherwise.
#[test]
fn the_fast_path_reads_what_parse_record_reads_or_gives_up() {
    let names = names();
    let share = [false, true];
    let bodies = [
        r#"{"frequency": 3, "share_books": 0.5}"#,
        r#"{"share_books": 0.5, "frequency": 3e0}"#,
        r#"{"fr\u0065quency": 3, "share_books": 1}"#,
        r#"{"frequency": "x", "share_books": 0.5, "frequency": 2}"#,
        r#"{"frequency": 2, "share_books": 0.5, "frequency": -2}"#,
        r#"{"frequency": 3}"#,
        r#"{"frequency": 3, "share_books": 1.5}"#,
        r#"{"frequency": 3, "share_books": 0, "x": 1}"#,
        r#"{"frequency": 1e39, "share_books": 0}"#,
        r#"{"customer_id": "C1"}"#,
        r#"{"customer_id": " "}"#,
        r#"{"customer_id": "C1", "frequency": 1}"#,
        r#"[1, 2]"#,
        r#"{"frequency": 3, "share_books": 0} trailing"#,
        " \t\r\n{ \"frequency\" :\n12.5e-3 , \"share_books\":0.1 } \n",
        r#"{"frequency": 1E+2, "share_books": 0.30000000000000004}"#,
        r#"{"frequency": 18446744073709551615, "share_books": 0}"#,
        r#"{"frequency": 18446744073709551616, "share_books": 0}"#,
        r#"{"frequency": 9007199254740993, "share_books": 0}"#,
        r#"{"frequency": 2.2250738585072011e-308, "share_books": 1e-400}"#,
        r#"{"frequency": 195.83333333333334, "share_books": 0.1e1}"#,
        r#"{"frequency": -0, "share_books": 0}"#,
        r#"{"frequency": -0.0, "share_books": 0}"#,
        r#"{"frequency": 01, "share_books": 0}"#,
        r#"{"frequency": 1., "share_books": 0}"#,
        r#"{"frequency": .5, "share_books": 0}"#,
        r#"{"frequency": 1e, "share_books": 0}"#,
        r#"{"frequency": +1, "share_books": 0}"#,
        r#"{"frequency": 1, "share_books": 0,}"#,
        r#"{"frequency": 1 "share_books": 0}"#,
        r#"{"frequency": null, "share_books": 0}"#,
        r#"{"frequency": true, "share_books": 0}"#,
        r#"{}"#,
        r#"{"customer_id": "Jo\u00e3o"}"#,
        "{\"customer_id\": \"João\"}",
        "{\"customer_id\": \"a\tb\"}",
        r#"{"customer_id": 7}"#,
        r#"{"customer_id": "C1", "customer_id": "C2"}"#,
    ];
    for body in bodies {
        let fast = fast_record(body.as_bytes(), &names, &share);
        let slow = serde_json::from_str::<Value>(body)
            .ok()
            .map(|v| parse_record(&v, &names, ""));
        match (fast, slow) {
            (Some(f), Some(Ok(Record::Features(row)))) => {
                assert_eq!(f.records, vec![FastRecord::Features], "{body}");
                assert_eq!(f.rows, row, "{body}");
            }
            (Some(f), Some(Ok(Record::Customer(id)))) => {
                assert_eq!(f.records, vec![FastRecord::Customer(id)], "{body}");
                assert_eq!(f.rows, vec![0.0; 2], "{body}");
            }
            (Some(f), slow) => panic!("{body}: fast read {f:?}, slow {slow:?}"),
            (None, Some(Ok(r))) => {
                // Allowed (the slow path answers), but only for duplicates,
                // escapes and a minus sign.
                assert!(
                    body.matches("frequency").count() > 1
                        || body.matches("customer_id").count() > 1
                        || body.contains('\\')
                        || body.contains('-'),
                    "{body}: gave up on {r:?}"
                );
            }
            (None, _) => {}
        }
    }
    let batch = br#"{"records": [{"frequency": 1, "share_books": 0}, {"customer_id": "C2"}]}"#;
    let f = fast_batch(batch, &names, &share, 2).expect("a valid batch");
    assert_eq!(f.rows, vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        f.records,
        vec![FastRecord::Features, FastRecord::Customer("C2".into())]
    );
    assert!(fast_batch(batch, &names, &share, 1).is_none(), "over max");
    assert!(fast_batch(br#"{"records": []}"#, &names, &share, 2).is_none());
    assert!(fast_batch(br#"{"records": [], "x": 1}"#, &names, &share, 2).is_none());
    assert!(fast_batch(br#"{"rows": [{}]}"#, &names, &share, 2).is_none());
    for bad in [
        &br#"{"records": [{"frequency": 1, "share_books": 0},]}"#[..],
        br#"{"records": [{"frequency": 1, "share_books": 0}], "records": []}"#,
        br#"{"records": [{"frequency": 1, "share_books": 0}]} x"#,
    ] {
        assert!(fast_batch(bad, &names, &share, 2).is_none());
    }
    let spaced = b" {\n \"records\" : [ {\"customer_id\":\"C2\"} ,\n{\"share_books\":1,\"frequency\":4} ]\n}\n";
    let f = fast_batch(spaced, &names, &share, 2).expect("whitespace anywhere JSON allows it");
    assert_eq!(f.rows, vec![0.0, 0.0, 4.0, 1.0]);
}

/// Numbers as the fast path reads them equal serde_json's reading (the
/// slow path's) to the bit, over many spellings: integers and decimals of
/// every length up to 20 digits, exponents, halfway cases.
#[test]
fn the_fast_path_reads_numbers_as_serde_json_does() {
    let names = vec!["x".to_string()];
    let share = [false];
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut spellings = vec![
        "0".to_string(),
        "0.0".into(),
        "1e0".into(),
        "9007199254740993".into(),
        "4.9406564584124654e-324".into(),
        "1.7976931348623157e308".into(),
        "3.4028234663852886e38".into(),
        "0.1".into(),
        "2.5".into(),
        // The edges of the exact path: 2^53 and one more, 19 and 20
        // digits, powers of ten ±22 and ±23, leading zeros in the fraction.
        "9007199254740992".into(),
        "9007199254740992e-22".into(),
        "9007199254740993e-22".into(),
        "9007199254740992e22".into(),
        "9007199254740992e23".into(),
        "1e22".into(),
        "1e23".into(),
        "1e-22".into(),
        "1e-23".into(),
        "1234567890123456789".into(),
        "12345678901234567890".into(),
        "0.0000000000000000000001".into(),
        "0.00000000000000000000001".into(),
        "123.456e-20".into(),
        "0e5".into(),
        "0.5E-0".into(),
    ];
    for _ in 0..20_000 {
        let int = next() % 10u64.pow((next() % 12) as u32 + 1);
        let frac_len = (next() % 18) as usize;
        let frac: String = (0..frac_len)
            .map(|_| char::from(b'0' + (next() % 10) as u8))
            .collect();
        let mut t = int.to_string();
        if !frac.is_empty() {
            t = format!("{t}.{frac}");
        }
        match next() % 4 {
            0 => t = format!("{t}e{}", (next() % 40) as i32 - 20),
            1 => t = format!("{t}E+{}", next() % 5),
            _ => {}
        }
        spellings.push(t);
    }
    for t in spellings {
        let body = format!("{{\"x\": {t}}}");
        let slow: f64 = serde_json::from_str::<Value>(&body).expect("json")["x"]
            .as_f64()
            .expect("a number");
        match fast_record(body.as_bytes(), &names, &share) {
            Some(f) => assert_eq!(f.rows[0].to_bits(), slow.to_bits(), "{t}"),
            None => assert!(slow > f64::from(f32::MAX), "{t}: gave up on {slow}"),
        }
    }
}
