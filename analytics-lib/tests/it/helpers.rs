//! Shared helpers: fixture folders as Parquet, small frame builders.

use std::path::{Path, PathBuf};

use analytics_lib::data::fixture::{fixture_dir, read_csv_tables};
use analytics_lib::data::{CuratedFrames, write_tables};
use tempfile::TempDir;

/// The committed tiny fixture, read from CSV.
pub fn tiny() -> CuratedFrames {
    read_csv_tables(&fixture_dir("tiny")).expect("the tiny fixture reads")
}

/// The tiny fixture written as Parquet into a fresh temporary folder.
pub fn tiny_parquet() -> (TempDir, PathBuf) {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("curated");
    write_tables(&tiny(), &path).expect("write fixture");
    (dir, path)
}

/// Write one frame as `<dir>/<name>.parquet`.
pub fn write_parquet(dir: &Path, name: &str, df: &mut analytics_lib::polars::prelude::DataFrame) {
    use analytics_lib::polars::prelude::*;
    let file = std::fs::File::create(dir.join(format!("{name}.parquet"))).expect("create");
    ParquetWriter::new(file).finish(df).expect("write parquet");
}

/// Assert that `text` contains every needle, printing the text if not.
#[track_caller]
pub fn assert_mentions(text: &str, needles: &[&str]) {
    let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "message does not mention {missing:?}:\n  {text}"
    );
}
