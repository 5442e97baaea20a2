//! Throughput of the Snowflake backend against the emulator vs the Parquet
//! backend (ignored: run by hand, it prints figures).
//!
//! ```text
//! target/release/analytics generate --lines 1M --seed 42 --defect-rate 0 --out target/sf-bench
//! SNOWFLAKE_BENCH_DATA=target/sf-bench OMP_WAIT_POLICY=PASSIVE \
//!   cargo test --release -p analytics-lib --test it snowflake::bench -- --ignored --nocapture
//! ```
//!
//! `SNOWFLAKE_BENCH_LOAD=insert` (default) loads through the client with
//! `INSERT … VALUES` batches of `SNOWFLAKE_BENCH_BATCH` rows (default 10 000);
//! `SNOWFLAKE_BENCH_LOAD=parquet` uses the emulator's own bulk path
//! (`INSERT INTO t SELECT * FROM read_parquet(…)`, DuckDB under fakesnow),
//! which real Snowflake does not have (there: `COPY INTO` from a stage).

use std::path::PathBuf;
use std::time::Instant;

use analytics_lib::contract::TABLES;
use analytics_lib::data::CuratedFrames;
use analytics_lib::kpi::{Filter, KpiOptions};
use analytics_lib::source::{CuratedSource, ParquetSource, Source};

use super::bulk_load;
use super::emulator::Emulator;

fn rows(f: &CuratedFrames) -> usize {
    f.row_counts().iter().map(|(_, n)| n).sum()
}

#[test]
#[ignore = "benchmark: run by hand with SNOWFLAKE_BENCH_DATA (see the module docs)"]
fn snowflake_vs_parquet_read_throughput() {
    let dir = PathBuf::from(std::env::var("SNOWFLAKE_BENCH_DATA").expect(
        "SNOWFLAKE_BENCH_DATA: a curated Parquet folder (analytics generate --defect-rate 0)",
    ));
    let mode = std::env::var("SNOWFLAKE_BENCH_LOAD").unwrap_or_else(|_| "insert".into());
    let batch: usize = std::env::var("SNOWFLAKE_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let parquet = ParquetSource::new(&dir);

    let t = Instant::now();
    let local = parquet
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("parquet read");
    let parquet_s = t.elapsed().as_secs_f64();
    let n = rows(&local);
    println!(
        "parquet   read: {n} rows ({} order lines) in {parquet_s:.3} s = {:.0} rows/s",
        local.order_items.height(),
        n as f64 / parquet_s
    );

    let emu = Emulator::start();
    let sf = emu.source("bench");
    let t = Instant::now();
    match mode.as_str() {
        "parquet" => bulk_load(&sf, &dir),
        _ => {
            for spec in TABLES {
                let df = match spec.name {
                    "customers" => &local.customers,
                    "products" => &local.products,
                    "orders" => &local.orders,
                    _ => &local.order_items,
                };
                sf.replace_table(&spec, df, batch).expect("insert load");
            }
        }
    }
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "emulator  load ({mode}, batch {batch}): {n} rows in {load_s:.1} s = {:.0} rows/s",
        n as f64 / load_s
    );

    let t = Instant::now();
    let remote = sf
        .load()
        .and_then(|d| Ok(d.collect()?))
        .expect("snowflake read");
    let sf_s = t.elapsed().as_secs_f64();
    assert_eq!(rows(&remote), n, "every row comes back");
    println!(
        "snowflake read: {n} rows in {sf_s:.3} s = {:.0} rows/s ({:.1}× slower than parquet)",
        n as f64 / sf_s,
        sf_s / parquet_s
    );

    let remote_src = Source::Snowflake(Box::new(sf));
    let local_src = Source::Parquet(parquet);
    let t = Instant::now();
    let a = local_src
        .kpis(&Filter::all(), &KpiOptions::default())
        .expect("local kpis");
    let local_kpi_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let b = remote_src
        .kpis(&Filter::all(), &KpiOptions::default())
        .expect("pushed-down kpis");
    let remote_kpi_s = t.elapsed().as_secs_f64();
    println!(
        "kpis: local (load + clean + polars) {local_kpi_s:.3} s; pushed down {remote_kpi_s:.3} s; revenue {:.2} vs {:.2}",
        a.revenue, b.revenue
    );
}
