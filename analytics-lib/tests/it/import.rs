//! Importers of public datasets (issue 6): the committed fixtures under
//! `data/fixtures/olist/` and `data/fixtures/online_retail/`, written in each
//! dataset's exact layout, whose counts are worked out by hand in the
//! fixtures' README files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use analytics_lib::clean::clean;
use analytics_lib::data::fixture::fixture_dir;
use analytics_lib::data::import::{
    ImportError, ImportReport, RuleCount, import_olist, import_online_retail,
};
use analytics_lib::data::{CuratedFrames, load};
use analytics_lib::polars::prelude::*;
use chrono::{NaiveDate, NaiveDateTime};
use tempfile::TempDir;

use crate::helpers::assert_mentions;

fn olist_dir() -> PathBuf {
    fixture_dir("olist")
}

fn retail_file(name: &str) -> PathBuf {
    fixture_dir("online_retail").join(name)
}

fn counts(list: &[RuleCount]) -> Vec<(&'static str, u64)> {
    list.iter().map(|r| (r.kind, r.rows)).collect()
}

/// Import with `f` into a fresh folder, then load the output through the
/// real loader and run final cleaning on it.
fn import_and_load(
    f: impl FnOnce(&Path) -> Result<ImportReport, ImportError>,
) -> (TempDir, ImportReport, CuratedFrames) {
    let tmp = TempDir::new().expect("temp dir");
    let out = tmp.path().join("curated");
    let report = f(&out).expect("import");
    assert_eq!(report.out, out);
    let frames = load(&out).expect("load").collect().expect("collect");
    (tmp, report, frames)
}

/// Cleaning finds nothing: every row the importer could not map was set
/// aside (and counted) by the importer itself.
#[track_caller]
fn assert_clean(frames: &CuratedFrames) {
    let cleaned = clean(frames).expect("clean");
    let found: Vec<(&str, u64)> = cleaned
        .report
        .defects
        .iter()
        .filter(|d| d.rows > 0)
        .map(|d| (d.kind, d.rows))
        .collect();
    assert!(found.is_empty(), "cleaning found defects: {found:?}");
    assert_eq!(cleaned.frames.row_counts(), frames.row_counts());
}

fn row(df: &DataFrame, key: &str, value: &str) -> usize {
    let ids = df
        .column(key)
        .expect("key")
        .cast(&DataType::String)
        .expect("as text");
    ids.str()
        .expect("text")
        .iter()
        .position(|v| v == Some(value))
        .unwrap_or_else(|| panic!("no row with {key} = {value}"))
}

fn text(df: &DataFrame, column: &str, i: usize) -> Option<String> {
    df.column(column)
        .expect("column")
        .cast(&DataType::String)
        .expect("as text")
        .str()
        .expect("text")
        .get(i)
        .map(str::to_string)
}

fn float(df: &DataFrame, column: &str, i: usize) -> Option<f64> {
    df.column(column)
        .expect("column")
        .f64()
        .expect("f64")
        .get(i)
}

fn int(df: &DataFrame, column: &str, i: usize) -> Option<i64> {
    let c = df
        .column(column)
        .expect("column")
        .cast(&DataType::Int64)
        .expect("cast");
    c.i64().expect("i64").get(i)
}

fn day(s: &str) -> i64 {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days()
}

fn micros(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .expect("timestamp")
        .and_utc()
        .timestamp_micros()
}

fn sum(df: &DataFrame, column: &str) -> f64 {
    df.column(column)
        .expect("column")
        .f64()
        .expect("f64")
        .sum()
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------
// Olist

#[test]
fn olist_fixture_report_matches_the_hand_count() {
    let (_tmp, r, frames) = import_and_load(|out| import_olist(&olist_dir(), out));
    let read: Vec<(&str, u64)> = r.read.iter().map(|f| (f.file.as_str(), f.rows)).collect();
    assert_eq!(
        read,
        vec![
            ("olist_customers_dataset.csv", 16),
            ("olist_orders_dataset.csv", 20),
            ("olist_order_items_dataset.csv", 23),
            ("olist_order_payments_dataset.csv", 18),
            ("olist_geolocation_dataset.csv", 15),
            ("olist_products_dataset.csv", 10),
            ("product_category_name_translation.csv", 8),
        ]
    );
    assert_eq!(
        r.written,
        vec![
            ("customers", 9),
            ("products", 8),
            ("orders", 14),
            ("order_items", 17)
        ]
    );
    assert_eq!(
        counts(&r.mapped),
        vec![
            ("status_delivered", 8),
            ("status_shipped", 1),
            ("status_invoiced", 1),
            ("status_processing", 1),
            ("status_approved", 1),
            ("status_canceled", 1),
            ("status_unavailable", 1),
            ("orders_split_payment", 2),
            ("orders_without_payment", 1),
            ("customers_merged", 2),
            ("customers_moved", 1),
            ("customers_without_geolocation", 1),
            ("products_without_category", 1),
            ("products_not_in_products_file", 1),
        ]
    );
    assert_eq!(
        counts(&r.set_aside),
        vec![
            ("orders_duplicate_id", 1),
            ("orders_unknown_status", 1),
            ("orders_created", 1),
            ("orders_unknown_customer", 1),
            ("orders_without_items", 2),
            ("items_unknown_order", 1),
            ("items_of_set_aside_orders", 3),
            ("items_duplicate_line", 1),
            ("items_non_positive_price", 1),
            ("payments_unknown_order", 1),
            ("customers_duplicate_id", 1),
            ("customers_without_orders", 4),
            ("products_duplicate_id", 1),
            ("products_without_lines", 2),
            ("geolocation_outside_brazil", 1),
        ]
    );
    assert_eq!(r.total_set_aside(), 22);
    // Every order row is written or set aside, once.
    let orders_aside: u64 = r
        .set_aside
        .iter()
        .filter(|c| c.file == "olist_orders_dataset.csv")
        .map(|c| c.rows)
        .sum();
    assert_eq!(
        r.read("olist_orders_dataset.csv"),
        r.written("orders") + orders_aside
    );
    let items_aside: u64 = r
        .set_aside
        .iter()
        .filter(|c| c.file == "olist_order_items_dataset.csv")
        .map(|c| c.rows)
        .sum();
    assert_eq!(
        r.read("olist_order_items_dataset.csv"),
        r.written("order_items") + items_aside
    );
    assert_eq!(
        frames.row_counts(),
        [
            ("customers", 9),
            ("products", 8),
            ("orders", 14),
            ("order_items", 17)
        ]
    );
    assert_clean(&frames);
}

#[test]
fn olist_mapping_decisions_hold_row_by_row() {
    let (_tmp, _r, f) = import_and_load(|out| import_olist(&olist_dir(), out));

    // Customers: customer_unique_id, first purchase, latest address, geo mean.
    let c = &f.customers;
    let u01 = row(c, "customer_id", "u01");
    assert_eq!(int(c, "signup_date", u01), Some(day("2017-01-05")));
    assert_eq!(text(c, "city", u01).as_deref(), Some("sao paulo"));
    let lat = (-23.545621 + -23.546081 + -23.546129) / 3.0;
    let lng = (-46.639292 + -46.64482 + -46.642951) / 3.0;
    assert!((float(c, "latitude", u01).expect("lat") - lat).abs() < 1e-9);
    assert!((float(c, "longitude", u01).expect("lng") - lng).abs() < 1e-9);
    let u02 = row(c, "customer_id", "u02");
    assert_eq!(text(c, "city", u02).as_deref(), Some("belo horizonte"));
    assert_eq!(text(c, "state", u02).as_deref(), Some("MG"));
    assert_eq!(int(c, "signup_date", u02), Some(day("2017-02-01")));
    // Zip prefix "1310" matches the geolocation's "01310".
    let u03 = row(c, "customer_id", "u03");
    assert_eq!(float(c, "latitude", u03), Some(-23.561414));
    // No geolocation row: null.
    let u04 = row(c, "customer_id", "u04");
    assert_eq!(float(c, "latitude", u04), None);
    assert_eq!(float(c, "longitude", u04), None);
    // The point in Lisbon is left out of the mean.
    let u05 = row(c, "customer_id", "u05");
    assert_eq!(float(c, "latitude", u05), Some(-3.131633));
    assert_eq!(float(c, "longitude", u05), Some(-60.023361));
    for gone in ["u08", "u11", "u12", "u13", "u99"] {
        assert!(
            !c.column("customer_id")
                .expect("id")
                .str()
                .expect("text")
                .iter()
                .any(|v| v == Some(gone)),
            "{gone} should not be written"
        );
    }

    // Orders: customer, status, payment, timestamp, channel.
    let o = &f.orders;
    let expect = [
        ("o01", "u01", "completed", "credit_card"),
        ("o04", "u02", "completed", "credit_card"),
        ("o08", "u06", "canceled", "credit_card"),
        ("o09", "u07", "canceled", "credit_card"),
        ("o11", "u09", "completed", "voucher"),
        ("o12", "u10", "completed", "unknown"),
        ("o15", "u06", "completed", "boleto"),
        ("o19", "u01", "completed", "not_defined"),
    ];
    for (id, customer, status, payment) in expect {
        let i = row(o, "order_id", id);
        assert_eq!(text(o, "customer_id", i).as_deref(), Some(customer), "{id}");
        assert_eq!(text(o, "status", i).as_deref(), Some(status), "{id}");
        assert_eq!(text(o, "payment_type", i).as_deref(), Some(payment), "{id}");
        assert_eq!(text(o, "channel", i).as_deref(), Some("web"), "{id}");
    }
    let o11 = row(o, "order_id", "o11");
    assert_eq!(int(o, "order_ts", o11), Some(micros("2017-09-01 10:00:00")));

    // Products: median price, Portuguese category, sem_categoria.
    let p = &f.products;
    for (id, category, price) in [
        ("p01", "informatica_acessorios", 110.0),
        ("p02", "beleza_saude", 50.0),
        ("p03", "cama_mesa_banho", 30.0),
        ("p04", "esporte_lazer", 77.75),
        ("p07", "sem_categoria", 22.0),
        ("pX", "sem_categoria", 15.0),
    ] {
        let i = row(p, "product_id", id);
        assert_eq!(text(p, "category", i).as_deref(), Some(category), "{id}");
        assert_eq!(float(p, "list_price", i), Some(price), "{id}");
    }

    // Lines: one per item, quantity 1, no discount, freight excluded.
    let l = &f.order_items;
    assert_eq!(sum(l, "unit_price"), 1057.5);
    assert_eq!(sum(l, "discount"), 0.0);
    let q = l.column("quantity").expect("quantity").i32().expect("i32");
    assert!(q.iter().all(|v| v == Some(1)));
    let o04_lines = l
        .column("order_id")
        .expect("order_id")
        .str()
        .expect("text")
        .iter()
        .filter(|v| *v == Some("o04"))
        .count();
    assert_eq!(o04_lines, 2, "two units of p01 are two lines");
}

// ---------------------------------------------------------------------------
// Online Retail

#[test]
fn online_retail_ii_fixture_matches_the_hand_count() {
    let file = retail_file("online_retail_II.csv");
    let (_tmp, r, f) = import_and_load(|out| import_online_retail(&file, out));
    assert_eq!(r.read("online_retail_II.csv"), 27);
    assert_eq!(
        r.written,
        vec![
            ("customers", 4),
            ("products", 8),
            ("orders", 6),
            ("order_items", 12)
        ]
    );
    assert_eq!(
        counts(&r.set_aside),
        vec![
            ("repeated_invoice_block", 2),
            ("missing_customer_id", 4),
            ("non_positive_price", 1),
            ("non_merchandise_code", 5),
            ("quantity_sign_mismatch", 2),
            ("invoice_customer_conflict", 1),
        ]
    );
    assert_eq!(
        counts(&r.mapped),
        vec![
            ("sale_lines", 10),
            ("cancellation_lines", 2),
            ("customer_id_float", 12),
            ("stock_code_upper_cased", 1),
            ("orders_several_timestamps", 1),
            ("customers_several_countries", 1),
            ("customers_unspecified_country", 1),
        ]
    );
    assert_eq!(r.read("online_retail_II.csv"), 12 + r.total_set_aside());
    assert_clean(&f);

    let o = &f.orders;
    let c489449 = row(o, "order_id", "C489449");
    assert_eq!(text(o, "status", c489449).as_deref(), Some("returned"));
    assert_eq!(text(o, "customer_id", c489449).as_deref(), Some("16321"));
    assert_eq!(text(o, "payment_type", c489449).as_deref(), Some("unknown"));
    let first = row(o, "order_id", "489434");
    assert_eq!(text(o, "status", first).as_deref(), Some("completed"));
    assert_eq!(
        int(o, "order_ts", first),
        Some(micros("2009-12-01 07:45:00"))
    );

    let l = &f.order_items;
    let lines: Vec<(String, i64, String, i64)> = (0..l.height())
        .filter(|&i| text(l, "order_id", i).as_deref() == Some("489434"))
        .map(|i| {
            (
                text(l, "order_id", i).unwrap_or_default(),
                int(l, "line_no", i).unwrap_or_default(),
                text(l, "product_id", i).unwrap_or_default(),
                int(l, "quantity", i).unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(String, i64, String, i64)> = [
        (1, "85048", 12),
        (2, "79323P", 12),
        (3, "79323P", 6),
        (4, "22041", 48),
    ]
    .into_iter()
    .map(|(n, p, q)| ("489434".to_string(), n, p.to_string(), q))
    .collect();
    assert_eq!(lines, expected);
    // The credit note's quantities are positive.
    let returned: i64 = (0..l.height())
        .filter(|&i| text(l, "order_id", i).as_deref() == Some("C489449"))
        .filter_map(|i| int(l, "quantity", i))
        .sum();
    assert_eq!(returned, 18);

    let c = &f.customers;
    let c13085 = row(c, "customer_id", "13085");
    assert_eq!(text(c, "state", c13085).as_deref(), Some("France"));
    assert_eq!(int(c, "signup_date", c13085), Some(day("2009-12-01")));
    assert_eq!(text(c, "city", c13085), None);
    let c12346 = row(c, "customer_id", "12346");
    assert_eq!(text(c, "state", c12346), None, "Unspecified → null");

    let p = &f.products;
    let heart = row(p, "product_id", "85123A");
    assert_eq!(float(p, "list_price", heart), Some(2.95));
    assert_eq!(text(p, "category", heart).as_deref(), Some("sem_categoria"));
}

#[test]
fn online_retail_i_fixture_us_dates_and_latin1() {
    let file = retail_file("online_retail_I.csv");
    let (_tmp, r, f) = import_and_load(|out| import_online_retail(&file, out));
    assert_eq!(r.read("online_retail_I.csv"), 15);
    assert_eq!(
        r.written,
        vec![
            ("customers", 4),
            ("products", 8),
            ("orders", 8),
            ("order_items", 10)
        ]
    );
    assert_eq!(
        counts(&r.set_aside),
        vec![
            ("repeated_invoice_block", 0),
            ("missing_customer_id", 3),
            ("non_positive_price", 0),
            ("non_merchandise_code", 2),
            ("quantity_sign_mismatch", 0),
            ("invoice_customer_conflict", 0),
        ]
    );
    assert_eq!(r.mapped("sale_lines"), 8);
    assert_eq!(r.mapped("cancellation_lines"), 2);
    assert_eq!(r.mapped("customer_id_float"), 0);
    assert_eq!(r.mapped("stock_code_upper_cased"), 1);
    assert_clean(&f);

    let o = &f.orders;
    let i = row(o, "order_id", "536365");
    assert_eq!(int(o, "order_ts", i), Some(micros("2010-12-01 08:26:00")));
    let i = row(o, "order_id", "C581484");
    assert_eq!(text(o, "status", i).as_deref(), Some("returned"));
    assert_eq!(int(o, "order_ts", i), Some(micros("2011-12-09 09:27:00")));
    let p = &f.products;
    let heart = row(p, "product_id", "85123A");
    assert_eq!(
        float(p, "list_price", heart),
        Some(2.75),
        "median of 2.55 and 2.95"
    );
    let c = &f.customers;
    let i = row(c, "customer_id", "15311");
    assert_eq!(int(c, "signup_date", i), Some(day("2010-12-01")));
    let i = row(c, "customer_id", "12583");
    assert_eq!(text(c, "state", i).as_deref(), Some("France"));
}

// ---------------------------------------------------------------------------
// Bad input: clear errors, nothing written.

/// A copy of the Olist fixture with one file replaced.
fn olist_copy_with(file: &str, contents: Option<&str>) -> TempDir {
    let tmp = TempDir::new().expect("temp dir");
    for entry in std::fs::read_dir(olist_dir()).expect("fixture") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".csv") {
            std::fs::copy(entry.path(), tmp.path().join(&name)).expect("copy");
        }
    }
    let path = tmp.path().join(file);
    match contents {
        Some(c) => std::fs::write(&path, c).expect("write"),
        None => std::fs::remove_file(&path).expect("remove"),
    }
    tmp
}

#[track_caller]
fn assert_fails_cleanly(
    result: Result<ImportReport, ImportError>,
    out: &Path,
    needles: &[&str],
) -> ImportError {
    let err = match result {
        Ok(_) => panic!("the import should fail"),
        Err(e) => e,
    };
    assert_mentions(&err.to_string(), needles);
    assert!(!out.exists(), "nothing is written on error");
    err
}

#[test]
fn olist_missing_column_is_a_clear_error() {
    let orders = std::fs::read_to_string(olist_dir().join("olist_orders_dataset.csv"))
        .expect("fixture")
        .replace("\"order_status\"", "\"status\"");
    let dir = olist_copy_with("olist_orders_dataset.csv", Some(&orders));
    let out = dir.path().join("out");
    let err = assert_fails_cleanly(
        import_olist(dir.path(), &out),
        &out,
        &[
            "olist_orders_dataset.csv",
            "`order_status`",
            "is missing",
            "expected",
            "found columns [order_id, customer_id, status,",
        ],
    );
    assert!(matches!(err, ImportError::MissingColumn { .. }));
}

#[test]
fn olist_missing_file_is_a_clear_error() {
    let dir = olist_copy_with("olist_order_payments_dataset.csv", None);
    let out = dir.path().join("out");
    let err = assert_fails_cleanly(
        import_olist(dir.path(), &out),
        &out,
        &[
            "olist_order_payments_dataset.csv",
            "file not found",
            "olist_orders_dataset.csv",
        ],
    );
    assert!(matches!(err, ImportError::MissingFile { .. }));
}

#[test]
fn olist_unparsable_date_names_file_row_column_and_value() {
    let orders = std::fs::read_to_string(olist_dir().join("olist_orders_dataset.csv"))
        .expect("fixture")
        .replace("\"2017-03-10 12:30:00\"", "\"10/03/2017 12h30\"");
    let dir = olist_copy_with("olist_orders_dataset.csv", Some(&orders));
    let out = dir.path().join("out");
    assert_fails_cleanly(
        import_olist(dir.path(), &out),
        &out,
        &[
            "olist_orders_dataset.csv",
            "data row 2",
            "`order_purchase_timestamp`",
            "YYYY-MM-DD HH:MM:SS",
            "`10/03/2017 12h30`",
        ],
    );
}

#[test]
fn online_retail_bad_input_is_a_clear_error() {
    let tmp = TempDir::new().expect("temp dir");
    let out = tmp.path().join("out");

    // A header of neither variant.
    let csv = tmp.path().join("retail.csv");
    std::fs::write(
        &csv,
        "InvoiceNo,StockCode,Quantity,InvoiceDate,Cost,CustomerID,Country\n\
         536365,85123A,6,12/1/2010 8:26,2.55,17850,United Kingdom\n",
    )
    .expect("write");
    assert_fails_cleanly(
        import_online_retail(&csv, &out),
        &out,
        &[
            "retail.csv",
            "`Price` or `UnitPrice`",
            "found columns [InvoiceNo",
        ],
    );

    // A date in neither format.
    std::fs::write(
        &csv,
        "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID,Country\n\
         536365,85123A,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n\
         536366,22633,6,01.12.2010 08:28,1.85,17850,United Kingdom\n",
    )
    .expect("write");
    assert_fails_cleanly(
        import_online_retail(&csv, &out),
        &out,
        &[
            "data row 2",
            "`InvoiceDate`",
            "`01.12.2010 08:28`",
            "12/1/2010 8:26",
        ],
    );

    // An Excel workbook given as is.
    let xlsx = tmp.path().join("online_retail_II.xlsx");
    std::fs::write(&xlsx, b"PK\x03\x04rest of a zip").expect("write");
    assert_fails_cleanly(
        import_online_retail(&xlsx, &out),
        &out,
        &["online_retail_II.xlsx", "Excel", "CSV"],
    );

    // No such file.
    assert_fails_cleanly(
        import_online_retail(&tmp.path().join("nope.csv"), &out),
        &out,
        &["nope.csv", "file not found", "retail.csv"],
    );
}

// ---------------------------------------------------------------------------
// Report and command line.

#[test]
fn report_prints_as_text_and_json() {
    let file = retail_file("online_retail_II.csv");
    let (_tmp, r, _f) = import_and_load(|out| import_online_retail(&file, out));
    let text = r.to_string();
    assert_mentions(
        &text,
        &[
            "Import report: online-retail",
            "online_retail_II.csv",
            "repeated_invoice_block",
            "credit note",
            "total set aside",
        ],
    );
    let j = r.to_json();
    assert_eq!(j["dataset"], "online-retail");
    assert_eq!(j["rows_read"]["online_retail_II.csv"], 27);
    assert_eq!(j["rows_written"]["order_items"], 12);
    assert_eq!(j["set_aside"]["missing_customer_id"]["rows"], 4);
    assert!(j["set_aside"]["missing_customer_id"]["decision"].is_string());
    assert_eq!(j["mapped"]["cancellation_lines"]["rows"], 2);
    assert_eq!(j["total_set_aside"], 15);
}

fn analytics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run analytics")
}

#[test]
fn cli_imports_both_datasets() {
    let tmp = TempDir::new().expect("temp dir");
    let out = tmp.path().join("olist");
    let (dir, out_s) = (olist_dir(), out.to_str().expect("utf-8").to_string());
    let o = analytics(&[
        "import",
        "olist",
        dir.to_str().expect("utf-8"),
        "--out",
        &out_s,
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(j["rows_written"]["orders"], 14);
    assert_eq!(j["set_aside"]["orders_created"]["rows"], 1);
    assert!(out.join("orders.parquet").is_file());

    // Without --json: the readable report, no JSON.
    let file = retail_file("online_retail_I.csv");
    let out2 = tmp.path().join("retail");
    let o = analytics(&[
        "import",
        "online-retail",
        file.to_str().expect("utf-8"),
        "--out",
        out2.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_mentions(
        &stdout,
        &["Import report: online-retail", "missing_customer_id"],
    );
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_err());

    // Bad input: non-zero exit, one clear message on stderr, nothing on stdout.
    let o = analytics(&[
        "import",
        "olist",
        tmp.path().to_str().expect("utf-8"),
        "--out",
        &out_s,
    ]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert_mentions(
        &String::from_utf8_lossy(&o.stderr),
        &[
            "error: while importing Olist",
            "olist_customers_dataset.csv",
            "file not found",
        ],
    );

    let help = analytics(&["import", "--help"]);
    assert!(help.status.success());
    assert_mentions(
        &String::from_utf8_lossy(&help.stdout),
        &["olist", "online-retail"],
    );
}
