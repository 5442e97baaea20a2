//! Customer lifetime value: a hand-computed case, and the real `lifetimes`
//! package (PyPI 0.11.3, in `.venv-lifetimes`, installed by
//! `make lifetimes-env`) as the oracle on generated data.

use std::path::{Path, PathBuf};
use std::process::Command;

use analytics_lib::chrono::NaiveDate;
use analytics_lib::clv::{BgNbd, ClvModel, ClvParams, CustomerSummary, GammaGamma, fit_clv};
use analytics_lib::data::generate::{GeneratorConfig, generate};
use analytics_lib::kpi::Sales;
use analytics_lib::polars::prelude::*;
use analytics_lib::source::Source;
use serde_json::Value;

use crate::helpers::assert_mentions;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// Sales lines with just the columns the summary reads.
fn hand_sales(rows: &[(&str, &str, bool, f64)], as_of: &str) -> Sales {
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let dates: Vec<NaiveDate> = rows.iter().map(|r| date(r.1)).collect();
    let done: Vec<bool> = rows.iter().map(|r| r.2).collect();
    let revenue: Vec<f64> = rows.iter().map(|r| r.3).collect();
    let lines = DataFrame::new(
        rows.len(),
        vec![
            Column::new("customer_id".into(), ids),
            Column::new("order_date".into(), dates),
            Column::new("completed".into(), done),
            Column::new("revenue".into(), revenue),
        ],
    )
    .expect("frame");
    Sales {
        lines,
        customers: DataFrame::empty(),
        order_ids: Default::default(),
        default_as_of: date(as_of),
    }
}

#[test]
fn the_summary_counts_distinct_completed_days_before_as_of() {
    let sales = hand_sales(
        &[
            // c1: two orders on 01/01 are one purchase day; a canceled order is no purchase.
            ("c1", "2024-01-01", true, 10.0),
            ("c1", "2024-01-01", true, 5.0),
            ("c1", "2024-01-04", true, 20.0),
            ("c1", "2024-01-08", true, 15.0),
            ("c1", "2024-01-08", true, 25.0),
            ("c1", "2024-01-09", false, 100.0),
            // c2: one purchase day.
            ("c2", "2024-01-05", true, 50.0),
            // c3: the day before as_of counts, as_of itself does not.
            ("c3", "2024-01-10", true, 7.0),
            ("c3", "2024-01-11", true, 9.0),
            // c4: nothing completed.
            ("c4", "2024-01-02", false, 30.0),
        ],
        "2024-01-11",
    );
    let s = CustomerSummary::compute(&sales, date("2024-01-11")).expect("summary");
    assert_eq!(s.customer_ids, ["c1", "c2", "c3"]);
    assert_eq!(s.frequency, [2, 0, 0]);
    assert_eq!(s.recency, [7.0, 0.0, 0.0]);
    assert_eq!(s.t, [10.0, 6.0, 1.0]);
    // c1's repeat days: 20 and 15 + 25 = 40, mean 30; the first day is left out.
    assert_eq!(s.monetary_value, [30.0, 0.0, 0.0]);
    assert_eq!(s.repeat_customers(), 1);

    let err = CustomerSummary::compute(&sales, date("2024-01-01")).expect_err("nothing before");
    assert_mentions(
        &err.to_string(),
        &["at least one completed order before 2024-01-01", "none"],
    );
}

/// With a = 2, b = 1, r = 2 the BG/NBD hypergeometric term is 1, so
/// `E[Y(t)] = (2 + x) · z · P(alive)` with `z = t/(α+T+t)`.
#[test]
fn predictions_equal_hand_computed_values() {
    let bg = BgNbd {
        r: 2.0,
        alpha: 10.0,
        a: 2.0,
        b: 1.0,
        log_likelihood: 0.0,
    };
    // x = 0: alive for sure; z = 20 / (10 + 10 + 20) = 1/2, E = 2 · 1/2.
    assert_eq!(bg.p_alive(0.0, 0.0, 10.0), 1.0);
    assert!((bg.expected_purchases(0.0, 0.0, 10.0, 20.0) - 1.0).abs() < 1e-12);
    // x = 2, t_x = 5, T = 10: P(alive) = 1 / (1 + 2/2 · (20/15)^4) = 81/337.
    let p = bg.p_alive(2.0, 5.0, 10.0);
    assert!((p - 81.0 / 337.0).abs() < 1e-12, "{p}");
    let e = bg.expected_purchases(2.0, 5.0, 10.0, 20.0);
    assert!((e - 4.0 * 0.5 * 81.0 / 337.0).abs() < 1e-12, "{e}");

    // Gamma-Gamma: population mean pv/(q−1) = 2·10/2 = 10; x = 2, m = 20:
    // w = 4/(4 + 2) = 2/3, so 10/3 + 40/3.
    let gg = GammaGamma {
        p: 2.0,
        q: 3.0,
        v: 10.0,
        log_likelihood: 0.0,
    };
    assert!((gg.population_mean() - 10.0).abs() < 1e-12);
    assert!((gg.expected_average_value(2.0, 20.0) - 50.0 / 3.0).abs() < 1e-12);

    // CLV over 60 days at 1 % a month: E(30) and E(60) − E(30), discounted.
    let model = ClvModel {
        format_version: analytics_lib::clv::CLV_FORMAT_VERSION,
        as_of: date("2024-01-11"),
        bgnbd: bg,
        gamma_gamma: gg,
        params: ClvParams::new().horizon_days(60).discount_rate(0.01),
        customers: 2,
        repeat_customers: 1,
        fit_seconds: 0.0,
    };
    let v = model.value(2.0, 5.0, 10.0, 20.0);
    let e30 = 4.0 * (30.0 / 50.0) * 81.0 / 337.0;
    let e60 = 4.0 * (60.0 / 80.0) * 81.0 / 337.0;
    let want = 50.0 / 3.0 * (e30 / 1.01 + (e60 - e30) / 1.01f64.powi(2));
    assert!((v.clv - want).abs() < 1e-10, "{} vs {want}", v.clv);
    assert!((v.expected_purchases - e60).abs() < 1e-12);
    assert!((v.expected_average_order_value - 50.0 / 3.0).abs() < 1e-12);
}

/// The Euler-transformed series equals the hypergeometric term as lifetimes
/// writes it, where that one is still finite, and stays finite for
/// frequent buyers where it is not.
#[test]
fn the_transformed_hypergeometric_term_equals_the_direct_one_and_survives_large_frequencies() {
    let bg = BgNbd {
        r: 0.64,
        alpha: 93.8,
        a: 1.42,
        b: 7.3,
        log_likelihood: 0.0,
    };
    // Direct: E = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)] · P(alive).
    let direct = |x: f64, tx: f64, t: f64, h: f64| {
        let (r, al, a, b) = (bg.r, bg.alpha, bg.a, bg.b);
        let z = h / (al + t + h);
        let (p, q, c) = (r + x, b + x, a + b + x - 1.0);
        let (mut term, mut sum, mut k) = (1.0f64, 1.0f64, 0.0);
        while k < 5000.0 {
            term *= (p + k) * (q + k) / ((c + k) * (k + 1.0)) * z;
            sum += term;
            k += 1.0;
        }
        c / (a - 1.0) * (1.0 - ((al + t) / (al + t + h)).powf(r + x) * sum) * bg.p_alive(x, tx, t)
    };
    for (x, tx, t, h) in [
        (0.0, 0.0, 30.0, 365.0),
        (1.0, 10.0, 200.0, 365.0),
        (3.0, 150.0, 400.0, 90.0),
        (6.0, 600.0, 700.0, 365.0),
    ] {
        let (ours, theirs) = (bg.expected_purchases(x, tx, t, h), direct(x, tx, t, h));
        assert!(
            ((ours - theirs) / theirs).abs() < 1e-9,
            "x {x}: {ours} vs {theirs}"
        );
    }
    // A customer buying every other day for three years.
    let e = bg.expected_purchases(500.0, 1000.0, 1001.0, 365.0);
    assert!(e.is_finite() && e > 100.0 && e < 365.0, "{e}");
}

#[test]
fn bad_parameters_and_summaries_are_refused_with_what_was_expected() {
    for (p, needles) in [
        (
            ClvParams::new().horizon_days(0),
            vec!["horizon_days", "1..=3650", "0"],
        ),
        (
            ClvParams::new().discount_rate(1.5),
            vec!["discount_rate", "[0, 1)", "1.5"],
        ),
        (ClvParams::new().tolerance(0.5), vec!["tolerance", "0.5"]),
    ] {
        assert_mentions(&p.check().expect_err("refused").to_string(), &needles);
    }
    let err = CustomerSummary::from_parts(
        date("2024-01-11"),
        vec!["a".into()],
        vec![1],
        vec![20.0],
        vec![10.0],
        vec![5.0],
    )
    .expect_err("recency > T");
    assert_mentions(
        &err.to_string(),
        &["0 ≤ recency ≤ t", "customer `a`", "recency 20"],
    );
    // Nothing to learn from without repeat purchases.
    let s = CustomerSummary::from_parts(
        date("2024-01-11"),
        vec!["a".into(), "b".into()],
        vec![0, 0],
        vec![0.0, 0.0],
        vec![10.0, 3.0],
        vec![0.0, 0.0],
    )
    .expect("summary");
    let err = ClvParams::new().fit(&s).expect_err("no repeat customer");
    assert_mentions(
        &err.to_string(),
        &["at least 2 customers with a repeat purchase", "0 of 2"],
    );
}

#[test]
fn a_saved_model_loads_back_and_a_damaged_one_is_refused() {
    let dir = tempfile::TempDir::new().expect("tmp");
    let (_data, sales) = generated(20_000, 3);
    let (_, model) = fit_clv(&sales, None, &ClvParams::default()).expect("fit");
    let path = dir.path().join("clv.json");
    model.save(&path).expect("save");
    assert_eq!(ClvModel::load(&path).expect("load"), model);
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .expect("write");
    assert_mentions(
        &ClvModel::load(&path).expect_err("version").to_string(),
        &["format version 1", "9"],
    );
    std::fs::write(&path, &text[..text.len() / 2]).expect("write");
    assert_mentions(
        &ClvModel::load(&path).expect_err("truncated").to_string(),
        &["clv.json", "as JSON"],
    );
}

fn generated(lines: u64, seed: u64) -> (tempfile::TempDir, Sales) {
    generated_with_defects(lines, seed, 0.0)
}

fn generated_with_defects(lines: u64, seed: u64, defect_rate: f64) -> (tempfile::TempDir, Sales) {
    let dir = tempfile::TempDir::new().expect("tmp");
    let cfg = GeneratorConfig {
        lines,
        seed,
        defect_rate,
        ..GeneratorConfig::default()
    };
    generate(&cfg, dir.path()).expect("generate");
    let sales = Source::parquet(dir.path())
        .prepare()
        .expect("prepare")
        .sales;
    (dir, sales)
}

fn lifetimes_python() -> PathBuf {
    if let Some(p) = std::env::var_os("LIFETIMES_PYTHON") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let bin = root.join(".venv-lifetimes/bin/python");
    assert!(
        bin.exists(),
        "the CLV oracle tests need the real lifetimes package, and {} is missing: run `make lifetimes-env` \
         (or set LIFETIMES_PYTHON to a python with lifetimes 0.11.3)",
        bin.display()
    );
    bin
}

/// Completed lines as lifetimes reads transactions: customer_id, date, revenue.
fn write_transactions(sales: &Sales, path: &Path) {
    let mut df = sales
        .lines_with_ids()
        .expect("ids")
        .lazy()
        .filter(col("completed"))
        .select([
            col("customer_id"),
            col("order_date").dt().strftime("%Y-%m-%d").alias("date"),
            col("revenue"),
        ])
        .collect()
        .expect("transactions");
    let mut file = std::fs::File::create(path).expect("create");
    CsvWriter::new(&mut file).finish(&mut df).expect("csv");
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

#[track_caller]
fn close(what: &str, ours: f64, theirs: f64, rel: f64) {
    assert!(
        ((ours - theirs) / theirs).abs() <= rel,
        "{what}: ours {ours}, lifetimes {theirs} (relative difference {:e}, allowed {rel:e})",
        ((ours - theirs) / theirs).abs()
    );
}

#[test]
fn agrees_with_lifetimes_on_generated_data() {
    let (dir, sales) = generated(60_000, 17);
    let as_of = sales.default_as_of;
    let tx = dir.path().join("transactions.csv");
    write_transactions(&sales, &tx);
    let out = Command::new(lifetimes_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clv/lifetimes_oracle.py"))
        .args([
            tx.to_str().expect("path"),
            &as_of.to_string(),
            "365",
            "12",
            "0.01",
        ])
        .output()
        .expect("run the lifetimes oracle");
    assert!(
        out.status.success(),
        "lifetimes oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");

    // The summary, customer by customer.
    let params = ClvParams::new().horizon_days(365).discount_rate(0.01);
    let (summary, model) = fit_clv(&sales, None, &params).expect("fit");
    let s = &theirs["summary"];
    let ids: Vec<&str> = s["customer_id"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(summary.customer_ids, ids);
    assert!(summary.len() > 2_000, "{} customers", summary.len());
    let freq: Vec<u32> = floats(&s["frequency"]).iter().map(|&x| x as u32).collect();
    assert_eq!(summary.frequency, freq);
    assert_eq!(summary.recency, floats(&s["recency"]));
    assert_eq!(summary.t, floats(&s["T"]));
    for (i, (a, b)) in summary
        .monetary_value
        .iter()
        .zip(floats(&s["monetary_value"]))
        .enumerate()
    {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{}: {a} vs {b}",
            ids[i]
        );
    }
    assert_eq!(
        model.repeat_customers,
        theirs["repeat_customers"].as_u64().expect("n") as usize
    );

    // Parameters within 1 %.
    for k in ["r", "alpha", "a", "b"] {
        let ours = serde_json::to_value(model.bgnbd).expect("json")[k]
            .as_f64()
            .expect("f");
        close(k, ours, theirs["bgnbd"][k].as_f64().expect("f"), 0.01);
    }
    for k in ["p", "q", "v"] {
        let ours = serde_json::to_value(model.gamma_gamma).expect("json")[k]
            .as_f64()
            .expect("f");
        close(k, ours, theirs["gamma_gamma"][k].as_f64().expect("f"), 0.01);
    }
    // Our optimum is at least as likely as lifetimes'.
    let ll = theirs["bgnbd"]["log_likelihood"].as_f64().expect("ll");
    assert!(
        model.bgnbd.log_likelihood >= ll - 1e-6 * ll.abs(),
        "{} vs {ll}",
        model.bgnbd.log_likelihood
    );

    // Mean P(alive) and mean expected purchases within 1e-3.
    let pred = model.predict(&summary).expect("predict");
    let d_alive = (pred.mean_p_alive() - theirs["mean_p_alive"].as_f64().expect("f")).abs();
    let d_exp = (pred.mean_expected_purchases()
        - theirs["mean_expected_purchases"].as_f64().expect("f"))
    .abs();
    assert!(
        d_alive < 1e-3,
        "mean P(alive): {} vs {}",
        pred.mean_p_alive(),
        theirs["mean_p_alive"]
    );
    assert!(
        d_exp < 1e-3,
        "mean expected purchases: {} vs {}",
        pred.mean_expected_purchases(),
        theirs["mean_expected_purchases"]
    );

    // With lifetimes' own parameters, our formulas give lifetimes' numbers
    // per customer (CLV: 12 months of 30 days = a 360-day horizon).
    let b = &theirs["bgnbd"];
    let g = &theirs["gamma_gamma"];
    let f = |v: &Value| v.as_f64().expect("f");
    let same = ClvModel {
        bgnbd: BgNbd {
            r: f(&b["r"]),
            alpha: f(&b["alpha"]),
            a: f(&b["a"]),
            b: f(&b["b"]),
            log_likelihood: 0.0,
        },
        gamma_gamma: GammaGamma {
            p: f(&g["p"]),
            q: f(&g["q"]),
            v: f(&g["v"]),
            log_likelihood: 0.0,
        },
        params: ClvParams::new().horizon_days(360).discount_rate(0.01),
        ..model.clone()
    };
    let at_360 = same.predict(&summary).expect("predict");
    let mut compared = 0;
    for (i, (name, values)) in [
        ("p_alive", floats(&theirs["p_alive"])),
        (
            "expected_average_order_value",
            floats(&theirs["expected_average_order_value"]),
        ),
        ("clv", floats(&theirs["clv"])),
    ]
    .iter()
    .enumerate()
    {
        for (j, want) in values.iter().enumerate() {
            if !want.is_finite() {
                continue;
            }
            let v = at_360.values[j];
            let got = [v.p_alive, v.expected_average_order_value, v.clv][i];
            assert!(
                (got - want).abs() <= 1e-8 * want.abs().max(1e-3),
                "{name} of {}: ours {got}, lifetimes {want}",
                ids[j]
            );
            compared += 1;
        }
    }
    assert!(
        compared > 3 * summary.len() * 9 / 10,
        "{compared} values compared"
    );
    let exp_365: Vec<f64> = floats(&theirs["expected_purchases"]);
    for (j, want) in exp_365.iter().enumerate().filter(|(_, w)| w.is_finite()) {
        let got = same.bgnbd.expected_purchases(
            f64::from(summary.frequency[j]),
            summary.recency[j],
            summary.t[j],
            365.0,
        );
        assert!(
            (got - want).abs() <= 1e-8 * want.abs().max(1e-3),
            "expected purchases of {}: {got} vs {want}",
            ids[j]
        );
    }
}

/// CLV by segment: every customer counted once, totals and means per
/// segment equal the sums over its customers, an empty segment has no
/// means, customers without a segment get their own row, and a segment
/// number without a name is refused.
#[test]
fn clv_by_segment_sums_each_segments_customers() {
    use analytics_lib::clv::clv_by_segment;
    let as_of = date("2024-03-01");
    let ids: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let summary = CustomerSummary::from_parts(
        as_of,
        ids.clone(),
        vec![0, 2, 5, 1, 3],
        vec![0.0, 30.0, 80.0, 10.0, 50.0],
        vec![40.0, 60.0, 90.0, 70.0, 100.0],
        vec![0.0, 120.0, 80.0, 300.0, 50.0],
    )
    .expect("summary");
    let model = ClvModel {
        format_version: analytics_lib::clv::CLV_FORMAT_VERSION,
        as_of,
        bgnbd: BgNbd {
            r: 0.8,
            alpha: 40.0,
            a: 0.5,
            b: 2.0,
            log_likelihood: 0.0,
        },
        gamma_gamma: GammaGamma {
            p: 3.0,
            q: 4.0,
            v: 60.0,
            log_likelihood: 0.0,
        },
        params: ClvParams::new(),
        customers: 5,
        repeat_customers: 4,
        fit_seconds: 0.0,
    };
    let predictions = model.predict(&summary).expect("predict");
    let names: Vec<String> = ["Champions", "Lost", "Empty"].map(String::from).to_vec();
    // a, c: Champions; b, e: Lost; d: none.
    let of = |id: &str| match id {
        "a" | "c" => Some(0),
        "b" | "e" => Some(1),
        _ => None,
    };
    let rows = clv_by_segment(&summary, &predictions, &names, of).expect("by segment");
    let v = &predictions.values;
    assert_eq!(
        rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["Champions", "Lost", "Empty", "no segment"]
    );
    assert_eq!(
        rows.iter().map(|r| r.customers).collect::<Vec<_>>(),
        [2, 2, 0, 1]
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(rows[0].total_clv, v[0].clv + v[2].clv));
    assert!(close(rows[1].total_clv, v[1].clv + v[4].clv));
    assert!(close(rows[3].total_clv, v[3].clv));
    assert!(close(
        rows[1].mean_p_alive.expect("mean"),
        (v[1].p_alive + v[4].p_alive) / 2.0
    ));
    assert!(close(
        rows[0].mean_expected_purchases.expect("mean"),
        (v[0].expected_purchases + v[2].expected_purchases) / 2.0
    ));
    assert!(close(
        rows[0].mean_clv.expect("mean"),
        rows[0].total_clv / 2.0
    ));
    assert_eq!(rows[2].segment, Some(2));
    assert_eq!(rows[2].mean_clv, None);
    assert_eq!(rows[2].total_clv, 0.0);
    assert_eq!(rows[3].segment, None);
    let total: f64 = rows.iter().map(|r| r.total_clv).sum();
    assert!(close(total, predictions.total_clv()));
    let shares: f64 = rows.iter().map(|r| r.share_of_clv).sum();
    assert!(close(shares, 1.0), "{shares}");
    assert!(rows.iter().all(|r| r.total_clv > 0.0 || r.customers == 0));

    // Every customer with a segment: no "no segment" row.
    let rows = clv_by_segment(&summary, &predictions, &names, |_| Some(1)).expect("by segment");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].customers, 5);

    // A segment number without a name, and predictions of another summary.
    let e = clv_by_segment(&summary, &predictions, &names, |_| Some(3)).expect_err("refused");
    assert_mentions(&e.to_string(), &["segment number below 3", "segment 3"]);
    let mut short = predictions.clone();
    short.values.pop();
    let e = clv_by_segment(&summary, &short, &names, of).expect_err("refused");
    assert_mentions(&e.to_string(), &["one prediction per customer", "4"]);
}

/// The purchase days are grouped by the view's `customer_key` when the lines
/// have it, by the ids' text otherwise (a view built by hand): the same
/// summaries and the same holdout check, on generated data with defects.
#[test]
fn the_summary_by_customer_key_equals_the_summary_by_id() {
    let (_dir, keyed) = generated_with_defects(30_000, 11, GeneratorConfig::default().defect_rate);
    let by_id = Sales {
        lines: keyed
            .lines_with_ids()
            .expect("ids")
            .drop("customer_key")
            .expect("drop the keys"),
        customers: keyed.customers.clone(),
        order_ids: keyed.order_ids.clone(),
        default_as_of: keyed.default_as_of,
    };
    let as_of = keyed.default_as_of;
    for at in [as_of, as_of - analytics_lib::chrono::Duration::days(200)] {
        let a = CustomerSummary::compute(&keyed, at).expect("by key");
        let b = CustomerSummary::compute(&by_id, at).expect("by id");
        assert!(
            a.customer_ids.len() > 1000,
            "{} customers",
            a.customer_ids.len()
        );
        assert!(
            a == b,
            "summary at {at}: {} and {} customers",
            a.customer_ids.len(),
            b.customer_ids.len()
        );
    }
    let params = ClvParams::default();
    let calibration_end = as_of - analytics_lib::chrono::Duration::days(180);
    let a = analytics_lib::clv::holdout_check(&keyed, calibration_end, as_of, &params, 5)
        .expect("by key");
    let b = analytics_lib::clv::holdout_check(&by_id, calibration_end, as_of, &params, 5)
        .expect("by id");
    assert!(a.actual_total > 0.0);
    // the same check but for the fit's wall time
    let (mut a, mut b) = (a, b);
    (a.model.fit_seconds, b.model.fit_seconds) = (0.0, 0.0);
    assert_eq!(a, b, "holdout check");
}
