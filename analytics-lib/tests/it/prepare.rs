//! The one preparation path (`Source::prepare`): what it returns, how it
//! fails, and that every caller goes through it.

use std::path::{Path, PathBuf};

use analytics_lib::clean::clean;
use analytics_lib::kpi::Sales;
use analytics_lib::source::{PrepareStep, Source, SourceError};

use crate::helpers::{assert_mentions, tiny, tiny_parquet, write_parquet};

#[test]
fn prepare_is_load_clean_join_with_the_report() {
    let (_tmp, dir) = tiny_parquet();
    let p = Source::parquet(&dir).prepare().expect("prepare");
    let by_hand = clean(&tiny()).expect("clean");
    assert_eq!(p.report, by_hand.report);
    assert!(
        p.defects_removed() > 0,
        "the tiny fixture has every defect kind"
    );
    let sales = Sales::from_frames(&by_hand.frames).expect("sales");
    assert!(p.sales.lines.equals_missing(&sales.lines));
    assert!(p.sales.customers.equals_missing(&sales.customers));
    assert_eq!(p.sales.default_as_of, sales.default_as_of);
    assert_eq!(p.rows["order_items"], by_hand.frames.order_items.height());
    assert_eq!(p.rows["customers"], by_hand.frames.customers.height());
    assert!(p.tables.orders.equals_missing(&by_hand.frames.orders));
    let t = p.timings;
    assert!(t.load >= 0.0 && t.clean >= 0.0 && t.join >= 0.0);
}

/// The tables the sales view gathers from come out of loading (and
/// cleaning) as one chunk each, however many part files and row groups
/// they were read from; the lines keep their chunks. Same answers as from
/// one file per table.
#[test]
fn tables_read_in_parts_are_gathered_from_one_chunk() {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let dir = tmp.path().join("curated");
    let frames = tiny();
    for (name, df) in [
        ("customers", &frames.customers),
        ("products", &frames.products),
        ("orders", &frames.orders),
        ("order_items", &frames.order_items),
    ] {
        let parts = dir.join(name);
        std::fs::create_dir_all(&parts).expect("mkdir");
        let third = df.height().div_ceil(3);
        for i in 0..3 {
            let mut part = df.slice((i * third) as i64, third);
            write_parquet(&parts, &format!("part-{i}"), &mut part);
        }
    }
    let p = Source::parquet(&dir).prepare().expect("prepare");
    for (name, df) in [
        ("customers", &p.tables.customers),
        ("products", &p.tables.products),
        ("orders", &p.tables.orders),
        ("sales customers", &p.sales.customers),
    ] {
        for c in df.columns() {
            assert_eq!(c.n_chunks(), 1, "{name}.{} is in several chunks", c.name());
        }
    }
    assert!(
        p.tables
            .order_items
            .column("order_id")
            .expect("column")
            .n_chunks()
            > 1
    );
    let (_tmp, one_file) = tiny_parquet();
    let q = Source::parquet(&one_file).prepare().expect("prepare");
    assert_eq!(p.report, q.report);
    assert!(p.sales.lines.equals_missing(&q.sales.lines));
    assert!(p.sales.customers.equals_missing(&q.sales.customers));
}

#[test]
fn a_bad_folder_names_the_step_the_source_and_the_cause() {
    let (_tmp, dir) = tiny_parquet();
    std::fs::remove_file(dir.join("orders.parquet")).expect("remove");
    let e = Source::parquet(&dir)
        .prepare()
        .expect_err("no orders table");
    assert_eq!(e.step, PrepareStep::Load);
    let text = format!("{e}");
    assert_mentions(
        &text,
        &[
            "while loading and validating the curated tables from parquet folder",
            "curated",
        ],
    );
    // The cause is kept, not flattened: a data error naming the table.
    let cause = std::error::Error::source(&e).expect("a cause").to_string();
    assert_mentions(&cause, &["orders"]);
    assert!(matches!(e.into_source(), SourceError::Data(_)));
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The non-test part of a Rust file (everything before its first `#[cfg(test)]`).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The Rust files below `dir`, without the unit-test modules kept in files
/// of their own (`tests.rs`, or anything in a `tests/` folder): test set-up
/// loads and cleans on its own.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "tests" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && name != "tests.rs" {
            out.push(p);
        }
    }
}

#[test]
fn every_caller_prepares_through_source_prepare() {
    let root = repo();
    // No library, CLI or service code loads, cleans or joins on its own: only
    // the preparation path (and the definitions themselves) may.
    let allowed = |file: &str, needle: &str| match needle {
        "clean::clean(" => [
            "analytics-lib/src/source/prepare.rs",
            "analytics-lib/src/clean.rs",
        ]
        .contains(&file),
        "Sales::from_frames(" => [
            "analytics-lib/src/source/prepare.rs",
            "analytics-lib/src/kpi.rs",
        ]
        .contains(&file),
        // The Parquet backend reads through the loader.
        _ => {
            file == "analytics-lib/src/source/mod.rs" || file.starts_with("analytics-lib/src/data/")
        }
    };
    let mut files = Vec::new();
    rust_files(&root.join("analytics-lib/src"), &mut files);
    rust_files(&root.join("serve/src"), &mut files);
    let mut offenders = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .expect("in repo")
            .to_string_lossy()
            .replace('\\', "/");
        let code = code_of(f);
        for needle in [
            "clean::clean(",
            "Sales::from_frames(",
            "loader::load(",
            "data::load(",
        ] {
            if code.contains(needle) && !allowed(&rel, needle) {
                offenders.push(format!("{rel}: {needle}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "prepare through Source::prepare: {offenders:#?}"
    );

    // serve's snapshots and the jobs call it, through the inputs that also
    // have the push-down path (Source::serve_input, Source::job_input).
    assert!(code_of(&root.join("serve/src/snapshot.rs")).contains(".serve_input()"));
    assert!(code_of(&root.join("analytics-lib/src/retrain/mod.rs")).contains(".job_input("));
    let inputs = code_of(&root.join("analytics-lib/src/source/prepare.rs"));
    assert!(inputs.contains("fn job_input(") && inputs.contains("fn serve_input("));
    assert!(
        inputs.matches("self.prepare()?").count() >= 2,
        "both inputs prepare on Parquet"
    );

    // Each notebook's first code cell that reads the data prepares it through it.
    for nb in ["01_eda", "02_regression", "03_segmentation"] {
        let path = root.join(format!("notebooks/{nb}.ipynb"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let cells = doc["cells"].as_array().expect("cells");
        let first = cells
            .iter()
            .filter(|c| c["cell_type"] == "code")
            .map(|c| {
                c["source"]
                    .as_array()
                    .map(|l| l.iter().filter_map(|s| s.as_str()).collect::<String>())
                    .unwrap_or_default()
            })
            .find(|s| s.contains("ANALYTICS_DATA"))
            .unwrap_or_else(|| panic!("{nb}: no cell reads ANALYTICS_DATA"));
        assert!(
            first.contains("Source::parquet(&data_dir).prepare()"),
            "{nb}: {first}"
        );
        for needle in ["clean::clean(", "Sales::from_frames(", "data::load("] {
            let all: String = cells.iter().map(|c| c["source"].to_string()).collect();
            assert!(!all.contains(needle), "{nb} calls {needle}");
        }
    }
}
