//! Writing curated tables as Parquet, all-or-nothing.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::loader::CuratedFrames;
use crate::contract::{CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS, TableSpec};
use crate::error::{DataError, Result};

/// Temporary name a table is written under before it is moved into place.
pub(crate) fn partial_path(out: &Path, table: &str) -> PathBuf {
    out.join(format!(".{table}.parquet.partial"))
}

/// Move finished temporary files into place. Each rename is atomic; the
/// files are synced first so a crash never leaves a truncated table.
pub(crate) fn commit(files: Vec<(PathBuf, PathBuf)>) -> Result<()> {
    for (tmp, _) in &files {
        File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(DataError::io(tmp, "syncing the finished table"))?;
    }
    for (tmp, dest) in files {
        std::fs::rename(&tmp, &dest)
            .map_err(DataError::io(&dest, "moving the finished table into place"))?;
    }
    Ok(())
}

/// Write the four tables to `out/<table>.parquet`. Nothing already in `out`
/// is replaced until all four files are complete.
pub fn write_tables(frames: &CuratedFrames, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(DataError::io(out, "creating the output folder"))?;
    let tables: [(&TableSpec, &DataFrame); 4] = [
        (&CUSTOMERS, &frames.customers),
        (&PRODUCTS, &frames.products),
        (&ORDERS, &frames.orders),
        (&ORDER_ITEMS, &frames.order_items),
    ];
    let mut done = Vec::new();
    for (spec, df) in tables {
        let name = spec.name;
        // Written in the contract's stored types (text, not the loaded
        // categoricals), as every reader of the contract expects.
        let mut df = spec
            .stored(df.clone())
            .map_err(DataError::polars(name, "writing Parquet"))?;
        let tmp = partial_path(out, name);
        let file = File::create(&tmp).map_err(DataError::io(&tmp, "creating the output file"))?;
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .map_err(DataError::polars(name, "writing Parquet"))?;
        done.push((tmp, out.join(format!("{name}.parquet"))));
    }
    commit(done)
}

/// Write one frame as a Parquet file at `path`, all-or-nothing: a
/// temporary file beside it, synced, then renamed over `path`. `what`
/// names the frame in errors.
pub fn write_parquet(df: &DataFrame, path: &Path, what: &'static str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(DataError::io(&dir, "creating the output folder"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| what.to_string());
    let tmp = dir.join(format!(".{name}.partial"));
    let result = (|| {
        let file = File::create(&tmp).map_err(DataError::io(&tmp, "creating the output file"))?;
        let mut df = df.clone();
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .map_err(DataError::polars(what, "writing Parquet"))?;
        commit(vec![(tmp.clone(), path.to_path_buf())])
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
