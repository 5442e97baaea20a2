//! Where a 1,000-record `POST /predict/batch` spends its time, in process
//! (no HTTP, no wrk): reading the body (the fast path), predicting with the
//! top contributions, and writing the answer, per model kind of the live
//! customer-spend version. The figures `bench/load.sh` gives over HTTP
//! include these plus actix, loopback and wrk on the same cores.
//!
//! ```text
//! cargo run --release -p serve --example batch_bench -- MODELS_DIR [ROUNDS]
//! ```
//!
//! The records are the ones `bench/load.sh` sends (the same formula).
//! Single-threaded: one batch is one request on one blocking thread.

use std::path::PathBuf;
use std::time::Instant;

use analytics_lib::models::ModelKind;
use analytics_lib::registry::{Registry, SPEND};
use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use serve::model::LiveModel;

const RECORDS: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (models, rounds) = match args.as_slice() {
        [m] => (PathBuf::from(m), 200),
        [m, r] => (
            PathBuf::from(m),
            r.parse().context("ROUNDS: expected a count")?,
        ),
        _ => bail!(
            "usage: batch_bench MODELS_DIR [ROUNDS] (found {} arguments)",
            args.len()
        ),
    };
    let reg = Registry::open(&models)?;
    let live = reg
        .live_dir(SPEND)?
        .context("no live customer_spend version")?;
    let top = serve::configuration::Settings::default().top_contributions;
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "kind", "read µs", "pred µs", "pred+k µs", "write µs", "total µs", "rows/s"
    );
    for kind in [
        ModelKind::Linear,
        ModelKind::RandomForest,
        ModelKind::Xgboost,
    ] {
        let file = live.join(format!("{}.msgpack", kind.name()));
        if !file.exists() {
            continue;
        }
        let model = LiveModel::load(&file, "bench".into(), None, None)?;
        let body = body(model.feature_names());
        let names = model.feature_names().to_vec();
        let share = model.is_share().to_vec();
        let p = names.len();
        let (mut read, mut pred, mut pred_k, mut total) = (0.0, 0.0, 0.0, 0.0);
        let arc = std::sync::Arc::new(model);
        for round in 0..rounds + 5 {
            let t = Instant::now();
            let fast = serve::input::fast_batch(&body, &names, &share, 10_000)
                .context("the fast path gave up on the benchmark body")?;
            let t_read = t.elapsed().as_secs_f64();
            assert_eq!(fast.rows.len(), RECORDS * p);
            let t = Instant::now();
            let a = arc.predict(&fast.rows, 0)?;
            let t_pred = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let b = arc.predict(&fast.rows, top)?;
            let t_pred_k = t.elapsed().as_secs_f64();
            assert_eq!(a.len(), b.len());
            let t = Instant::now();
            let out = serve::routes::predict::batch_answer(Some(arc.clone()), &body, top, 10_000)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let t_total = t.elapsed().as_secs_f64();
            std::hint::black_box(out);
            if round >= 5 {
                read += t_read;
                pred += t_pred;
                pred_k += t_pred_k;
                total += t_total;
            }
        }
        let r = rounds as f64;
        let us = |s: f64| s / r * 1e6;
        println!(
            "{:<14} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>11.0}",
            kind.name(),
            us(read),
            us(pred),
            us(pred_k),
            us(total - read - pred_k),
            us(total),
            RECORDS as f64 / (total / r)
        );
    }
    Ok(())
}

/// 1,000 records as `bench/load.sh` writes them.
fn body(names: &[String]) -> Vec<u8> {
    let shares: Vec<&String> = names.iter().filter(|n| n.starts_with("share_")).collect();
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let freq = 1 + i % 9;
            let monetary = 80.0 + 37.5 * (i % 50) as f64 * freq as f64;
            let mut r = Map::new();
            for n in names {
                let v = match n.as_str() {
                    "recency_days" => ((i * 7) % 365) as f64,
                    "frequency" => freq as f64,
                    "monetary" => monetary,
                    "tenure_days" => (30 + (i * 11) % 700) as f64,
                    "average_ticket" => monetary / freq as f64,
                    "orders_90d" => (i % 3) as f64,
                    "revenue_90d" => (i % 3) as f64 * monetary / freq as f64,
                    _ => 0.0,
                };
                r.insert(n.clone(), json!(v));
            }
            if !shares.is_empty() {
                r.insert(shares[i % shares.len()].clone(), json!(1.0));
            }
            Value::Object(r)
        })
        .collect();
    serde_json::to_vec(&json!({ "records": records })).expect("serialisable")
}
